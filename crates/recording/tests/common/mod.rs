//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use portcullis_recording::{Header, RecordingSettings, Recordings, TerminalHeader};
use serde_json::{Map, Value, json};

pub fn header(session_id: &str) -> Header {
    Header {
        v: 1,
        session_id: session_id.to_owned(),
        started_ms: 1_767_225_600_000,
        protocol: "postgres".to_owned(),
        connection: "orders".to_owned(),
        principal: json!({"subject": "agent-7", "issuer": "https://idp", "groups": ["ops"]}),
        source_ip: Some("10.0.0.5".to_owned()),
    }
}

pub fn terminal_header(session_id: &str) -> TerminalHeader {
    TerminalHeader {
        session_id: session_id.to_owned(),
        started_ms: 1_767_225_600_000,
        protocol: "ssh".to_owned(),
        connection: "bastion".to_owned(),
        principal: json!({"subject": "alice", "issuer": "https://idp", "groups": ["ops"]}),
        source_ip: Some("10.0.0.9".to_owned()),
        width: 80,
        height: 24,
        term: Some("xterm-256color".to_owned()),
        command: None,
        title: None,
    }
}

pub fn start(dir: &Path, flush_every: Duration, queue: usize) -> Recordings {
    let settings = RecordingSettings {
        dir: dir.to_owned(),
        flush_every,
        queue,
    };
    Recordings::start(settings).expect("start recordings")
}

pub fn data(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("test data must be an object"),
    }
}
