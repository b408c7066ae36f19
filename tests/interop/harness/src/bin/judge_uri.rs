//! The MCP layer's judged form of resource URIs, for the interop suite's
//! URI differential (`tests/interop/uri_differential.mjs`): reads one JSON
//! string per line, prints the judged form (a JSON string) or `null`
//! (refused) per line.

use std::io::{BufRead, Write};

use mcp_resource_guard::fuzzing::normalize_resource_uri;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in std::io::stdin().lock().lines() {
        let uri: String = serde_json::from_str(&line?)?;
        let judged = normalize_resource_uri(&uri).ok();
        writeln!(out, "{}", serde_json::to_string(&judged)?)?;
    }
    out.flush()?;
    Ok(())
}
