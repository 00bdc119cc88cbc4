//! The record kinds of the corpus, one line or block each, with their sensitive slots (a
//! labelled value when the writer is hot, a harmless alternative otherwise) and their hard
//! negatives.
//!
//! Filler text is chosen so that it holds nothing the engine's documented rules call
//! sensitive: secret-like key names outside the slots only with values those rules leave
//! alone (`"token_type":"Bearer"` is short and plain), hex ids with at least one letter,
//! digit groups kept apart by commas or words so none reads as a phone or card number.

use portcullis_masking::Entity;

use super::make;
use super::{Rng, Writer};

/// Picks a record kind by weight and appends one record.
pub(super) fn record(w: &mut Writer) {
    match w.rng.below(100) {
        0..=37 => log_line(w),
        38..=62 => json_line(w),
        63..=72 => csv_block(w),
        73..=86 => prose(w),
        _ => config(w),
    }
}

/// A sensitive value, or the clean alternative text.
fn slot(
    w: &mut Writer,
    entity: Entity,
    make: fn(&mut Rng) -> String,
    clean: fn(&mut Rng) -> String,
) {
    if w.hot() {
        w.secret(entity, make);
    } else {
        let s = clean(&mut w.rng);
        w.put(&s);
    }
}

/// A sensitive value, or a hard negative of `kind`.
fn slot_or_negative(
    w: &mut Writer,
    entity: Entity,
    make: fn(&mut Rng) -> String,
    kind: &'static str,
    negative: fn(&mut Rng) -> String,
) {
    if w.hot() {
        w.secret(entity, make);
    } else {
        w.negative(kind, negative);
    }
}

fn num(w: &mut Writer, lo: u64, hi: u64) -> u64 {
    w.rng.range(lo, hi)
}

// ---- application log lines ----

fn log_line(w: &mut Writer) {
    w.negative("timestamp", make::timestamp);
    let level = w.rng.pick(&["INFO ", "WARN ", "DEBUG", "ERROR"]);
    w.put(&format!(" {level} "));
    match w.rng.below(10) {
        0 | 1 => access(w),
        2 => login(w),
        3 => pool(w),
        4 => charge(w),
        5 => iface(w),
        6 => outbound(w),
        7 => job(w),
        8 => session(w),
        _ => kyc(w),
    }
    w.put("\n");
}

fn access(w: &mut Writer) {
    w.put("http::access req_id=");
    w.negative("uuid", make::uuid);
    let (order, status, ms, frac) = (
        num(w, 1000, 99_999),
        w.rng.pick(&["200", "201", "204", "404", "500"]),
        num(w, 1, 900),
        num(w, 0, 9),
    );
    w.put(&format!(
        " method=GET path=/api/v1/orders/{order} status={status} dur={ms}.{frac}ms client="
    ));
    if w.rng.chance(20) {
        w.put("[");
        slot(w, Entity::Ipv6, make::ipv6, make::host);
        w.put("]");
    } else {
        slot(w, Entity::Ipv4, make::ipv4, make::host);
    }
    w.put(" user=");
    slot(w, Entity::Email, make::email, make::user);
}

fn login(w: &mut Writer) {
    w.put("auth::login failed login for ");
    slot(w, Entity::Email, make::email, make::user);
    w.put(" from ");
    slot(w, Entity::Ipv4, make::ipv4, make::host);
    let attempt = num(w, 1, 9);
    w.put(&format!(" attempt={attempt} trace="));
    w.negative("hex_id", make::hex_id);
    if w.rng.chance(30) {
        w.put(" form=/login?username=");
        let u = make::user(&mut w.rng);
        w.put(&u);
        w.put("&password=");
        slot_or_negative(
            w,
            Entity::GenericSecret,
            make::password,
            "placeholder",
            |_| "********".to_owned(),
        );
        w.put("&next=/home");
    }
}

fn pool(w: &mut Writer) {
    let (conn, wait) = (num(w, 1, 64), num(w, 1, 99));
    w.put(&format!(
        "db::pool checkout conn={conn} wait=0.{wait}ms dsn="
    ));
    dsn_url(w);
}

/// `scheme://user:password@host:port/db`, with the password labelled, a placeholder, or no
/// password at all.
fn dsn_url(w: &mut Writer) {
    let (scheme, port) = *w.rng.pick(&[
        &("postgres", 5432),
        &("postgresql", 5432),
        &("mysql", 3306),
        &("mongodb", 27017),
        &("amqp", 5672),
    ]);
    let user = w.rng.pick(&["app", "svc_orders", "readonly", "etl"]);
    w.put(&format!("{scheme}://{user}"));
    if w.hot() {
        w.put(":");
        w.secret(Entity::ConnectionStringPassword, make::password);
    } else if w.rng.chance(20) {
        w.put(":");
        let p = w
            .rng
            .pick(&["${DB_PASS}", "$DB_PASS", "********", "%(db_password)s"]);
        w.negative_str("placeholder", p);
    }
    w.put("@");
    if w.hot() && w.rng.chance(30) {
        w.secret(Entity::Ipv4, make::ipv4);
    } else {
        let h = make::host(&mut w.rng);
        w.put(&h);
    }
    let db = w.rng.pick(&["orders", "billing", "users", "events"]);
    w.put(&format!(":{port}/{db}"));
}

fn charge(w: &mut Writer) {
    w.put("billing::charge declined order=");
    w.negative("order_number", make::order_number);
    w.put(" amount=");
    w.negative("amount", make::amount);
    w.put(" card=");
    if w.hot() {
        w.secret(Entity::CreditCard, make::card);
    } else if w.rng.chance(40) {
        w.negative("luhn_invalid_card", make::bad_card);
    } else {
        let last4 = num(w, 1000, 9999);
        w.put(&format!("visa-ending-{last4}"));
    }
    if w.rng.chance(30) {
        w.put(" payout_iban=");
        slot_or_negative(
            w,
            Entity::Iban,
            make::iban,
            "mod97_invalid_iban",
            make::bad_iban,
        );
    }
}

fn iface(w: &mut Writer) {
    let n = num(w, 0, 3);
    w.put(&format!("net::iface eth{n} link up mtu=1500 hwaddr "));
    slot(w, Entity::MacAddress, make::mac, |_| "pending".to_owned());
    w.put(" inet ");
    slot(w, Entity::Ipv4, make::ipv4, |_| "dhcp".to_owned());
    w.put(" inet6 ");
    slot(w, Entity::Ipv6, make::ipv6, |_| "none".to_owned());
}

fn outbound(w: &mut Writer) {
    let path = w
        .rng
        .pick(&["/v1/charges", "/v2/customers", "/v1/messages"]);
    w.put(&format!("api::client POST https://api.example.com{path} "));
    match w.rng.below(4) {
        0 => {
            w.put("Authorization: Bearer ");
            slot(w, Entity::GenericSecret, make::token, |_| {
                "(none)".to_owned()
            });
        }
        1 => {
            w.put("Authorization: Bearer ");
            slot(w, Entity::Jwt, make::jwt, |_| "(none)".to_owned());
        }
        2 => {
            w.put("Authorization: Basic ");
            slot(w, Entity::GenericSecret, make::basic_credentials, |_| {
                "(none)".to_owned()
            });
        }
        _ => {
            w.put("query=?page=2&access_token=");
            slot_or_negative(w, Entity::GenericSecret, make::token, "placeholder", |_| {
                "${ACCESS_TOKEN}".to_owned()
            });
        }
    }
    let ms = num(w, 10, 2000);
    w.put(&format!(" status=201 took={ms}ms"));
}

fn job(w: &mut Writer) {
    w.put("worker::jobs job=");
    w.negative("uuid", make::uuid);
    let rows = num(w, 1, 5_000_000);
    w.put(&format!(" export finished rows={rows} sha256="));
    w.negative("sha256", make::sha256);
    w.put(" build=");
    w.negative("version", make::version);
    w.put(" at=");
    w.negative("epoch", make::epoch);
    w.put(" notify=");
    slot(w, Entity::Phone, make::phone, |_| "ops-oncall".to_owned());
}

fn session(w: &mut Writer) {
    w.put("auth::session issued sid=");
    w.negative("hex_id", make::hex_id);
    let ttl = w.rng.pick(&["900", "3600", "86400"]);
    w.put(&format!(" ttl={ttl} id_token="));
    slot_or_negative(w, Entity::Jwt, make::jwt, "placeholder", |_| {
        "null".to_owned()
    });
    w.put(" commit=");
    w.negative("sha1", make::sha1);
}

fn kyc(w: &mut Writer) {
    w.put("kyc::verify subject=");
    let n = make::name(&mut w.rng);
    w.put(&n);
    if w.rng.chance(50) {
        w.put(" ssn=");
        slot(w, Entity::UsSsn, make::ssn, |_| "on-file".to_owned());
    } else {
        w.put(" nino=");
        slot(w, Entity::UkNino, make::nino, |_| "on-file".to_owned());
    }
    w.put(" result=pass checked=");
    w.negative("date", make::date);
}

// ---- JSON records, one per line ----

fn json_line(w: &mut Writer) {
    match w.rng.below(17) {
        0..=2 => customer_json(w),
        3..=5 => payment_json(w),
        6 | 7 => credentials_json(w),
        8..=10 => service_json(w),
        11 | 12 => oauth_json(w),
        13 => aws_json(w),
        14 => kyc_json(w),
        15 => device_json(w),
        _ => {
            if w.rng.chance(30) {
                service_account_json(w);
            } else {
                device_json(w);
            }
        }
    }
    w.put("\n");
}

fn customer_json(w: &mut Writer) {
    w.put(r#"{"id":""#);
    w.negative("uuid", make::uuid);
    w.put(r#"","type":"customer.updated","ts":""#);
    w.negative("timestamp", make::timestamp);
    let name = make::name(&mut w.rng);
    w.put(&format!(r#"","customer":{{"name":"{name}","email":""#));
    slot(w, Entity::Email, make::email, make::user);
    w.put(r#"","phone":""#);
    slot(w, Entity::Phone, make::phone, |_| "unknown".to_owned());
    let city = w.rng.pick(make::CITIES);
    w.put(&format!(
        r#"","city":"{city}"}},"tags":["vip","b2b"],"schema":""#
    ));
    w.negative("version", make::version);
    w.put(r#""}"#);
}

fn payment_json(w: &mut Writer) {
    w.put(r#"{"event":"payment.captured","id":""#);
    w.negative("uuid", make::uuid);
    w.put(r#"","order":""#);
    w.negative("order_number", make::order_number);
    w.put(r#"","amount":"#);
    let (units, cents) = (num(w, 1, 9999), num(w, 0, 99));
    w.negative_str("amount", &format!("{units}.{cents:02}"));
    w.put(r#","currency":"EUR","card_number":""#);
    if w.hot() {
        w.secret(Entity::CreditCard, make::card);
    } else if w.rng.chance(40) {
        w.negative("luhn_invalid_card", make::bad_card);
    } else {
        let last4 = num(w, 1000, 9999);
        w.put(&format!("**** {last4}"));
    }
    w.put(r#"","iban":""#);
    slot_or_negative(
        w,
        Entity::Iban,
        make::iban,
        "mod97_invalid_iban",
        make::bad_iban,
    );
    w.put(r#"","created":"#);
    w.negative("epoch", make::epoch);
    w.put("}");
}

fn credentials_json(w: &mut Writer) {
    let user = make::user(&mut w.rng);
    w.put(&format!(r#"{{"user":"{user}","password":"#));
    if w.hot() {
        w.put("\"");
        w.secret(Entity::GenericSecret, make::password);
        w.put("\"");
    } else {
        w.negative("placeholder", make::json_placeholder);
    }
    w.put(r#","last_login_ip":""#);
    slot(w, Entity::Ipv4, make::ipv4, |_| "unknown".to_owned());
    w.put(r#"","last_login":""#);
    w.negative("timestamp", make::timestamp);
    w.put(r#"","mfa":true}"#);
}

fn service_json(w: &mut Writer) {
    let service = w.rng.pick(&["billing", "search", "mailer", "maps", "ci"]);
    w.put(&format!(r#"{{"service":"{service}","#));
    type Key = (&'static str, Entity, fn(&mut Rng) -> String);
    let keys: [&Key; 6] = [
        &("api_key", Entity::GenericSecret, make::token),
        &("stripe_key", Entity::StripeKey, make::stripe),
        &("openai_api_key", Entity::OpenaiApiKey, make::openai),
        &("maps_key", Entity::GoogleApiKey, make::google),
        &("github_token", Entity::GithubToken, make::github),
        &("slack_bot_token", Entity::SlackToken, make::slack),
    ];
    let &(key, entity, maker) = w.rng.pick(&keys);
    w.put(&format!(r#""{key}":"#));
    if w.hot() {
        w.put("\"");
        w.secret(entity, maker);
        w.put("\"");
    } else {
        w.negative("placeholder", make::json_placeholder);
    }
    let (timeout, retries) = (num(w, 100, 30_000), num(w, 0, 5));
    w.put(&format!(
        r#","endpoint":"https://api.example.com/v2","timeout_ms":{timeout},"retries":{retries}}}"#
    ));
}

fn oauth_json(w: &mut Writer) {
    let sub = num(w, 1, 99_999);
    w.put(&format!(r#"{{"sub":"user-{sub}","access_token":"#));
    if w.hot() {
        w.put("\"");
        w.secret(Entity::Jwt, make::jwt);
        w.put("\"");
    } else {
        w.negative("placeholder", make::json_placeholder);
    }
    w.put(r#","token_type":"Bearer","expires_in":3600,"refresh_token":"#);
    if w.hot() {
        w.put("\"");
        w.secret(Entity::GenericSecret, make::token);
        w.put("\"");
    } else {
        w.negative_str("placeholder", "null");
    }
    w.put("}");
}

fn aws_json(w: &mut Writer) {
    w.put(r#"{"Credentials":{"AccessKeyId":""#);
    slot(w, Entity::AwsAccessKeyId, make::aws_key_id, |_| {
        "unset".to_owned()
    });
    w.put(r#"","SecretAccessKey":"#);
    if w.hot() {
        w.put("\"");
        w.secret(Entity::AwsSecretAccessKey, make::aws_secret);
        w.put("\"");
    } else {
        w.negative_str("placeholder", "null");
    }
    w.put(r#","SessionToken":"#);
    w.negative_str("placeholder", "null");
    w.put(r#","Expiration":""#);
    w.negative("timestamp", make::timestamp);
    w.put(r#""},"region":"eu-west-1"}"#);
}

fn kyc_json(w: &mut Writer) {
    let name = make::name(&mut w.rng);
    w.put(&format!(r#"{{"applicant":"{name}","ssn":""#));
    if w.hot() {
        let maker = if w.rng.chance(50) {
            make::ssn
        } else {
            make::ssn_bare
        };
        w.secret(Entity::UsSsn, maker);
    } else {
        w.put("pending");
    }
    w.put(r#"","passport_number":""#);
    slot(w, Entity::UsPassport, make::passport, |_| {
        "pending".to_owned()
    });
    w.put(r#"","ni_number":""#);
    slot(w, Entity::UkNino, make::nino, |_| "pending".to_owned());
    w.put(r#"","checked":""#);
    w.negative("date", make::date);
    w.put(r#""}"#);
}

fn device_json(w: &mut Writer) {
    w.put(r#"{"device":""#);
    w.negative("hex_id", make::hex_id);
    w.put(r#"","mac":""#);
    slot(w, Entity::MacAddress, make::mac, |_| "unknown".to_owned());
    w.put(r#"","ip":""#);
    slot(w, Entity::Ipv4, make::ipv4, |_| "unknown".to_owned());
    w.put(r#"","ipv6":""#);
    slot(w, Entity::Ipv6, make::ipv6, |_| "unknown".to_owned());
    w.put(r#"","fw":""#);
    w.negative("version", make::version);
    w.put(r#"","seen":"#);
    w.negative("epoch", make::epoch);
    w.put("}");
}

/// A cloud service-account file: the private key with escaped newlines, and an e-mail.
fn service_account_json(w: &mut Writer) {
    let project = num(w, 100, 999);
    w.put(&format!(
        r#"{{"type":"service_account","project_id":"acme-{project}","private_key":"#
    ));
    if w.hot() {
        w.put("\"");
        w.secret(Entity::PrivateKey, make::pem_json);
        w.put("\\n\"");
    } else {
        w.negative_str("placeholder", "null");
    }
    w.put(r#","client_email":""#);
    if w.hot() {
        w.secret_str(
            Entity::Email,
            &format!("svc-{project}@acme-{project}.iam.gserviceaccount.com"),
        );
    } else {
        w.put("svc-reader");
    }
    w.put(r#""}"#);
}

// ---- CSV blocks ----

fn csv_block(w: &mut Writer) {
    let kind = w.rng.below(4);
    w.put(
        [
            "id,name,email,phone,city,signup_date\n",
            "payment_id,order,card_number,amount,currency,paid_on\n",
            "emp_id,name,iban,tax_id,salary\n",
            "host,ip,mac,ipv6,os_version,last_seen\n",
        ][kind],
    );
    for _ in 0..w.rng.range(3, 8) {
        match kind {
            0 => customer_row(w),
            1 => payment_row(w),
            2 => payroll_row(w),
            _ => device_row(w),
        }
        w.put("\n");
    }
}

fn customer_row(w: &mut Writer) {
    let (id, name) = (num(w, 1, 99_999), make::name(&mut w.rng));
    w.put(&format!("{id},{name},"));
    slot(w, Entity::Email, make::email, make::user);
    w.put(",");
    slot(w, Entity::Phone, make::phone, |_| String::new());
    let city = w.rng.pick(make::CITIES);
    w.put(&format!(",{city},"));
    w.negative("date", make::date);
}

fn payment_row(w: &mut Writer) {
    w.negative("uuid", make::uuid);
    w.put(",");
    w.negative("order_number", make::order_number);
    w.put(",");
    if w.hot() {
        w.secret(Entity::CreditCard, make::card);
    } else if w.rng.chance(40) {
        w.negative("luhn_invalid_card", make::bad_card);
    }
    w.put(",");
    let (units, cents) = (num(w, 1, 9999), num(w, 0, 99));
    w.negative_str("amount", &format!("{units}.{cents:02}"));
    w.put(",EUR,");
    w.negative("date", make::date);
}

fn payroll_row(w: &mut Writer) {
    let (id, name) = (num(w, 1, 9999), make::name(&mut w.rng));
    w.put(&format!("{id},{name},"));
    slot_or_negative(
        w,
        Entity::Iban,
        make::iban,
        "mod97_invalid_iban",
        make::bad_iban,
    );
    w.put(",");
    if w.rng.chance(50) {
        slot(w, Entity::UsSsn, make::ssn, |_| String::new());
    } else {
        slot(w, Entity::UkNino, make::nino, |_| String::new());
    }
    let salary = num(w, 30, 180);
    w.put(&format!(",{salary}000"));
}

fn device_row(w: &mut Writer) {
    let host = make::host(&mut w.rng);
    w.put(&format!("{host},"));
    slot(w, Entity::Ipv4, make::ipv4, |_| String::new());
    w.put(",");
    slot(w, Entity::MacAddress, make::mac, |_| String::new());
    w.put(",");
    slot(w, Entity::Ipv6, make::ipv6, |_| String::new());
    w.put(",");
    w.negative("version", make::version);
    w.put(",");
    w.negative("epoch", make::epoch);
}

// ---- prose ----

fn prose(w: &mut Writer) {
    let name = make::name(&mut w.rng);
    match w.rng.below(7) {
        0 => {
            let n = num(w, 100, 99_999);
            w.put(&format!("Ticket #{n}: {name} wrote in from "));
            slot(w, Entity::Email, make::email, |_| "the web form".to_owned());
            w.put(" about invoice ");
            w.negative("order_number", make::order_number);
            w.put(", dated ");
            w.negative("date", make::date);
            w.put(", for ");
            w.negative("amount", make::amount);
            w.put(".");
        }
        1 => {
            w.put(&format!("Please call {name} back on "));
            slot(w, Entity::Phone, make::phone, |_| {
                "the number on file".to_owned()
            });
            w.put(" before ");
            w.negative("date", make::date);
            w.put("; the refund of ");
            w.negative("amount", make::amount);
            w.put(" was approved by the support team.");
        }
        2 => {
            let (n, m) = (num(w, 1, 9), num(w, 10, 40));
            w.put("After the upgrade to ");
            w.negative("version", make::version);
            w.put(&format!(", {n} of {m} replicas (among them "));
            w.negative("uuid", make::uuid);
            w.put(") reported errors from ");
            slot(w, Entity::Ipv4, make::ipv4, make::host);
            w.put(" for about twenty minutes.");
        }
        3 => {
            w.put(&format!("{name} asked us to wire the deposit to "));
            slot(w, Entity::Iban, make::iban, |_| {
                "the account on file".to_owned()
            });
            w.put(" (reference ");
            w.negative("order_number", make::order_number);
            w.put(") by ");
            w.negative("date", make::date);
            w.put(", not to the old account ");
            w.negative("mod97_invalid_iban", make::bad_iban);
            w.put(".");
        }
        4 => {
            w.put(&format!("The applicant {name} gave SSN "));
            slot(w, Entity::UsSsn, make::ssn, |_| "nothing".to_owned());
            w.put(" and passport no. ");
            slot(w, Entity::UsPassport, make::passport, |_| {
                "nothing yet".to_owned()
            });
            w.put("; the form was signed on ");
            w.negative("date", make::date);
            w.put(".");
        }
        5 => {
            w.put("Build ");
            w.negative("sha1", make::sha1);
            w.put(" shipped at ");
            w.negative("epoch", make::epoch);
            w.put(" (");
            w.negative("timestamp", make::timestamp);
            let fixes = num(w, 2, 40);
            w.put(&format!(
                "), with {fixes} fixes; the quarterly report totals "
            ));
            w.negative("amount", make::amount);
            w.put(" in revenue.");
        }
        _ => {
            let words: Vec<&str> = (0..8).map(|_| w.rng.pick(make::WORDS)).collect();
            w.put(&format!(
                "{name} noted that the {} {} is {} and the {} {} {}; card ",
                words[0], words[1], words[2], words[3], words[4], words[5]
            ));
            w.negative("luhn_invalid_card", make::bad_card);
            w.put(&format!(" was declined, see {} {}.", words[6], words[7]));
        }
    }
    w.put("\n");
}

// ---- config and env snippets ----

fn config(w: &mut Writer) {
    match w.rng.below(20) {
        0..=8 => env_block(w),
        9..=12 => toml_block(w),
        13..=15 => yaml_block(w),
        16..=18 => connection_strings(w),
        _ => pem_block(w),
    }
}

fn env_block(w: &mut Writer) {
    let service = w.rng.pick(&["orders", "billing", "search", "notifier"]);
    let stage = w.rng.pick(&["staging", "production", "dev"]);
    w.put(&format!("# {service} ({stage})\n"));
    type Var = (&'static str, Entity, fn(&mut Rng) -> String);
    let vars: [&Var; 11] = [
        &("DB_PASSWORD", Entity::GenericSecret, make::password),
        &("API_KEY", Entity::GenericSecret, make::token),
        &("JWT_SECRET", Entity::GenericSecret, make::token),
        &(
            "AWS_ACCESS_KEY_ID",
            Entity::AwsAccessKeyId,
            make::aws_key_id,
        ),
        &(
            "AWS_SECRET_ACCESS_KEY",
            Entity::AwsSecretAccessKey,
            make::aws_secret,
        ),
        &("STRIPE_SECRET_KEY", Entity::StripeKey, make::stripe),
        &("GITHUB_TOKEN", Entity::GithubToken, make::github),
        &("SLACK_BOT_TOKEN", Entity::SlackToken, make::slack),
        &("OPENAI_API_KEY", Entity::OpenaiApiKey, make::openai),
        &("GOOGLE_MAPS_KEY", Entity::GoogleApiKey, make::google),
        &(
            "SLACK_WEBHOOK_URL",
            Entity::SlackToken,
            make::slack_webhook_path,
        ),
    ];
    if w.rng.chance(60) {
        w.put("DATABASE_URL=");
        dsn_url(w);
        w.put("\n");
    }
    let mut used: Vec<&str> = Vec::new();
    for _ in 0..w.rng.range(2, 5) {
        let &(name, entity, maker) = w.rng.pick(&vars);
        if used.contains(&name) {
            continue;
        }
        used.push(name);
        let webhook = name == "SLACK_WEBHOOK_URL";
        w.put(&format!("{name}="));
        if webhook {
            w.put("https://hooks.slack.com/services/");
        }
        if w.hot() {
            w.secret(entity, maker);
        } else if webhook {
            w.put("none");
        } else {
            w.negative_str("placeholder", &format!("${{{name}}}"));
        }
        w.put("\n");
    }
    let workers = num(w, 1, 32);
    w.put(&format!("LOG_LEVEL=info\nWORKERS={workers}\nRELEASE="));
    w.negative("version", make::version);
    w.put("\n");
}

fn toml_block(w: &mut Writer) {
    let host = make::host(&mut w.rng);
    let user = w.rng.pick(&["app", "orders", "reporting"]);
    w.put(&format!(
        "[database]\nhost = \"{host}\"\nport = 5432\nuser = \"{user}\"\npassword = "
    ));
    if w.hot() {
        w.put("\"");
        w.secret(Entity::GenericSecret, make::password);
        w.put("\"");
    } else {
        w.put("\"");
        w.negative("placeholder", make::placeholder);
        w.put("\"");
    }
    let pool = num(w, 2, 50);
    w.put(&format!(
        "\npool_size = {pool}\n\n[upstream]\nsecret_key = "
    ));
    if w.hot() {
        w.put("\"");
        w.secret(Entity::GenericSecret, make::token);
        w.put("\"");
    } else {
        w.put("\"\"");
    }
    w.put("\n");
}

fn yaml_block(w: &mut Writer) {
    w.put("smtp:\n  host: smtp.example.com\n  port: 587\n  username: ");
    slot(w, Entity::Email, make::email, |_| "mailer".to_owned());
    w.put("\n  password: ");
    slot_or_negative(
        w,
        Entity::GenericSecret,
        make::password,
        "placeholder",
        make::placeholder,
    );
    w.put("\nalerts:\n  webhook: https://hooks.slack.com/services/");
    slot(w, Entity::SlackToken, make::slack_webhook_path, |_| {
        "disabled".to_owned()
    });
    w.put("\n  client_secret: ");
    slot_or_negative(w, Entity::GenericSecret, make::token, "placeholder", |_| {
        "${CLIENT_SECRET}".to_owned()
    });
    w.put("\n");
}

/// libpq key/value and ADO.NET strings: the password is a connection-string password.
fn connection_strings(w: &mut Writer) {
    let host = make::host(&mut w.rng);
    let db = w.rng.pick(&["orders", "billing", "users"]);
    let user = w.rng.pick(&["app", "etl", "sa"]);
    if w.rng.chance(50) {
        w.put(&format!(
            "PG_CONN=\"host={host} port=5432 dbname={db} user={user} password="
        ));
        slot_or_negative(
            w,
            Entity::ConnectionStringPassword,
            make::password,
            "placeholder",
            |_| "${PGPASS}".to_owned(),
        );
        w.put(" sslmode=require\"\n");
    } else {
        w.put(&format!(
            "ConnectionStrings__Default=Server=tcp:{host},1433;Database={db};User Id={user};Password="
        ));
        slot_or_negative(
            w,
            Entity::ConnectionStringPassword,
            make::password,
            "placeholder",
            |_| "********".to_owned(),
        );
        w.put(";Encrypt=true\n");
    }
}

fn pem_block(w: &mut Writer) {
    let service = w.rng.pick(&["api-gateway", "ingest", "vpn"]);
    w.put(&format!("# TLS key for {service}, rotated "));
    w.negative("date", make::date);
    w.put("\n");
    slot(w, Entity::PrivateKey, make::pem, |_| {
        "tls_key_file = /etc/ssl/private/service.pem".to_owned()
    });
    w.put("\n");
}
