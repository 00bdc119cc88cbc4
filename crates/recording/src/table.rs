//! A small aligned text table for replay: recorded result columns and rows.

use serde_json::Value;

use crate::replay::clean;

/// Cells longer than this are cut, so one wide value cannot push the table off screen.
const MAX_CELL_CHARS: usize = 40;

/// Renders the header, a rule and one line per row; cells are left-aligned and separated
/// by ` | `. `columns` holds names (or objects with a `name`); each row is an array of
/// cells in column order, or an object keyed by column name.
pub(crate) fn render(columns: &[Value], rows: &[Value]) -> Vec<String> {
    let names: Vec<String> = columns.iter().map(column_name).collect();
    let cells: Vec<Vec<String>> = rows.iter().map(|row| row_cells(row, &names)).collect();
    let mut widths: Vec<usize> = names.iter().map(|n| n.chars().count()).collect();
    for row in &cells {
        for (i, cell) in row.iter().enumerate() {
            match widths.get_mut(i) {
                Some(w) => *w = (*w).max(cell.chars().count()),
                None => widths.push(cell.chars().count()),
            }
        }
    }
    let mut lines = vec![join(&names, &widths)];
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    lines.push(rule.join("-+-"));
    lines.extend(cells.iter().map(|row| join(row, &widths)));
    lines
}

fn join(cells: &[String], widths: &[usize]) -> String {
    let padded: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(i, w)| format!("{:<w$}", cells.get(i).map_or("", String::as_str)))
        .collect();
    padded.join(" | ").trim_end().to_owned()
}

fn column_name(column: &Value) -> String {
    match column {
        Value::String(name) => cut(&clean(name)),
        Value::Object(o) => match o.get("name") {
            Some(Value::String(name)) => cut(&clean(name)),
            _ => cell(column),
        },
        other => cell(other),
    }
}

fn row_cells(row: &Value, names: &[String]) -> Vec<String> {
    match row {
        Value::Array(values) => values.iter().map(cell).collect(),
        Value::Object(o) => names
            .iter()
            .map(|n| o.get(n).map_or_else(String::new, cell))
            .collect(),
        other => vec![cell(other)],
    }
}

/// NULL as `NULL`, strings as their text, anything else as compact JSON.
fn cell(value: &Value) -> String {
    let text = match value {
        Value::Null => "NULL".to_owned(),
        Value::String(s) => clean(s),
        other => clean(&other.to_string()),
    };
    cut(&text)
}

fn cut(text: &str) -> String {
    if text.chars().count() <= MAX_CELL_CHARS {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(MAX_CELL_CHARS - 1).collect();
    short.push('…');
    short
}
