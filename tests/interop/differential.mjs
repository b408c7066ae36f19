// The differential harness: the guard proxy in front of real MCP servers
// (the TypeScript SDK with its own createMcpExpressApp() and on plain
// node:http, the Python SDK, rmcp), each logging what it executes. Every
// request of the corpus goes through the proxy; what the MCP layer judged
// (its audit line) is compared with what the server ran (its log):
//
// - a request the layer refused executes nothing;
// - a request it let through executes only what it judged: the same
//   method, the same tool or prompt name, the same resource (the server's
//   own idea of which one it served, against the URI the layer judged),
//   for the same principal, in a session that principal owns.
//
// Any disagreement fails the run, with the case and both sides.
import { readFileSync, existsSync } from 'node:fs';
import { sendRaw } from './raw_http.mjs';
import { corpus, generated } from './corpus.mjs';

/** The MCP layer's audit lines in `text`: {outcome, sub, methods, targets}. */
export function auditLines(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line.includes('layer="mcp"')) continue;
    const field = (name) => new RegExp(` ${name}=("[^"]*"|\\S*)`).exec(line)?.[1]?.replace(/^"|"$/g, '') ?? '';
    const tools = / mcp_tool=(.*)$/.exec(line)?.[1] ?? '';
    out.push({
      outcome: field('outcome'),
      status: field('status'),
      sub: field('sub'),
      methods: field('mcp_method').split(',').filter(Boolean),
      targets: tools.split(',').filter(Boolean),
      line,
    });
  }
  return out;
}

/** The server's log lines (JSON). */
function executedLines(path) {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/**
 * `true` when `served` is a reading of the judged URI: the URI itself,
 * without its fragment, or without its query and fragment (the layer
 * judges all three), percent-decoded (`file:///secret/%61` and
 * `file:///secret/a` name one resource).
 */
function servedAsJudged(judged, served) {
  const norm = (u) => {
    try {
      return decodeURIComponent(u);
    } catch {
      return u;
    }
  };
  const noFragment = judged.split('#')[0];
  const readings = [judged, noFragment, noFragment.split('?')[0]];
  return readings.some((r) => norm(r) === norm(served));
}

/**
 * Why what ran disagrees with what was judged (null when it agrees).
 * `judged`: the layer's audit lines for this request; `ran`: the server's.
 */
export function disagreement(judged, ran, principal) {
  const allowed = judged.filter((j) => j.outcome === 'allow');
  if (allowed.length === 0) {
    return ran.length === 0 ? null : `refused (${judged.map((j) => j.status).join(',') || 'before the layer'}), yet the server ran ${JSON.stringify(ran)}`;
  }
  for (const e of ran) {
    const j = allowed.find((a) => {
      if (a.sub !== principal) return false;
      if (e.tool !== undefined) return a.methods.includes('tools/call') && a.targets.includes(e.tool);
      if (e.prompt !== undefined) return a.methods.includes('prompts/get') && a.targets.includes(e.prompt);
      if (e.resource !== undefined) return a.methods.includes('resources/read') && a.targets.some((t) => servedAsJudged(t, e.resource));
      return false;
    });
    if (!j) return `ran ${JSON.stringify(e)} but judged ${JSON.stringify(allowed.map(({ line, ...a }) => a))}`;
    if (e.subject !== principal) return `ran for ${e.subject}, judged for ${principal}: ${JSON.stringify(e)}`;
    if (e.session !== null && e.session !== undefined && e.owner !== principal) {
      return `ran in ${e.owner}'s session for ${principal}: ${JSON.stringify(e)}`;
    }
  }
  return null;
}

/**
 * Runs the corpus against one target: `proxyPort` (the guard proxy, whose
 * stderr text `proxyLog()` returns), `log` (the server's executed log),
 * `tokens` ({alice, bob} with `subjects`), `wires` (the wires the server
 * serves). Resolves to {cases, executed, failures: [...]}.
 */
export async function runTarget({ name, proxyPort, proxyLog, log, tokens, subjects, wires }) {
  const failures = [];
  const send = (req, who) => {
    const headers = req.headers
      .filter(([k]) => !(req.dropVersion && k.toLowerCase() === 'mcp-protocol-version'))
      .map(([k, v]) => [k, v.replaceAll('@alice', sessions.alice ?? 'none').replaceAll('@bob', sessions.bob ?? 'none')]);
    headers.unshift(['Authorization', `Bearer ${tokens[who]}`]);
    const session = req.session === 'own' ? sessions[who] : req.session === 'alice' ? sessions.alice : null;
    if (session) headers.push(['Mcp-Session-Id', session]);
    return sendRaw(proxyPort, {
      method: req.method ?? 'POST',
      path: (req.path ?? '/mcp').replaceAll('@alice', sessions.alice ?? 'none'),
      headers,
      body: req.body,
    });
  };
  // Sessions on the session wire: alice's and bob's, through the proxy.
  const sessions = {};
  if (wires.includes('session')) {
    for (const who of ['alice', 'bob']) {
      const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'differential', version: '1' } } };
      const headers = [['Content-Type', 'application/json'], ['Accept', 'application/json, text/event-stream']];
      const r = await send({ headers, body: JSON.stringify(init) }, who);
      sessions[who] = r.headers['mcp-session-id'];
      if (!sessions[who]) throw new Error(`${name}: no session for ${who}: ${r.status} ${r.body}`);
      const done = { jsonrpc: '2.0', method: 'notifications/initialized' };
      await send({ headers: [...headers, ['Mcp-Session-Id', sessions[who]], ['MCP-Protocol-Version', '2025-11-25']], body: JSON.stringify(done) }, who);
    }
  }
  let executed = 0;
  // DIFFERENTIAL_MUTATIONS (default 150) generated cases from
  // DIFFERENTIAL_SEED (default: a new one, printed): more by hand.
  const seed = Number(process.env.DIFFERENTIAL_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const cases = [...corpus(), ...generated(Number(process.env.DIFFERENTIAL_MUTATIONS ?? 150), seed)];
  for (const c of cases) {
    const who = c.who ?? 'bob';
    const auditBefore = auditLines(proxyLog()).length;
    const ranBefore = executedLines(log).length;
    const r = await send(c, who);
    // The proxy writes its audit line before it answers; its stderr may
    // reach us a moment later.
    let judged = [];
    for (let i = 0; i < 40; i++) {
      judged = auditLines(proxyLog()).slice(auditBefore);
      if (judged.length > 0 || ![200, 202].includes(r.status)) break;
      await new Promise((res) => setTimeout(res, 25));
    }
    await new Promise((res) => setTimeout(res, 10));
    judged = auditLines(proxyLog()).slice(auditBefore);
    const ran = executedLines(log).slice(ranBefore);
    executed += ran.length;
    const why = disagreement(judged, ran, subjects[who]);
    if (why) failures.push(`${name}: [${c.klass}] ${c.name}: ${why}`);
    if (c.control && wires.includes(c.wire) && ran.length === 0) {
      failures.push(`${name}: [control] ${c.name} executed nothing (${r.status} ${r.body.slice(0, 200)})`);
    }
  }
  return { cases: cases.length, executed, failures, seed };
}
