// The differential harness's requests: the attack corpus and generated
// mutations, each an exact HTTP request from bob (todo:read) or alice
// (everything), on the session wire (2025-11-25, in the sender's own
// session unless the case says whose) or the stateless one (2026-07-28).
// Classes: charset and media type, content encoding, duplicated and
// escaped keys, Unicode escapes, resource URI spellings (RFC 3986 vs
// WHATWG), header case, duplicates and Connection-named headers,
// identity look-alikes, batches, HTTP methods, query strings,
// resumption. Positive controls (`control: true`) must execute wherever
// their wire is served: a harness that sees nothing executed proves
// nothing.
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';

const STATELESS = '2026-07-28';
const META = { 'io.modelcontextprotocol/protocolVersion': STATELESS, 'io.modelcontextprotocol/clientCapabilities': {} };

let nextId = 1;
const rpc = (method, params) => ({ jsonrpc: '2.0', id: nextId++, method, ...(params === undefined ? {} : { params }) });
const call = (name, args = {}) => rpc('tools/call', { name, arguments: args });
const read = (uri) => rpc('resources/read', { uri });

/** What `Mcp-Name` mirrors for a message. */
function nameOf(m) {
  const p = m.params ?? {};
  if (m.method === 'tools/call' || m.method === 'prompts/get') return p.name;
  if (m.method?.startsWith('resources/')) return p.uri;
  if (m.method?.startsWith('tasks/')) return p.taskId;
  return undefined;
}

/** A header value as `Mcp-Name` carries it (Base64 form when not ASCII). */
function headerValue(v) {
  return /^[\x20-\x7e]*$/.test(v) ? v : `=?base64?${Buffer.from(v).toString('base64')}?=`;
}

/**
 * A request for message `m` on `wire` ("session" or "stateless"), with
 * `extra` headers appended and `body` (default: `m` as JSON) instead.
 */
function request(m, wire, { extra = [], body, session = 'own', contentType = 'application/json' } = {}) {
  const headers = [['Accept', 'application/json, text/event-stream']];
  if (contentType !== null) headers.push(['Content-Type', contentType]);
  let payload = m;
  if (wire === 'stateless') {
    payload = Array.isArray(m) ? m : { ...m, params: { ...(m.params ?? {}), _meta: META } };
    headers.push(['MCP-Protocol-Version', STATELESS]);
    if (!Array.isArray(m) && m.method) {
      headers.push(['Mcp-Method', m.method]);
      const n = nameOf(m);
      if (typeof n === 'string') headers.push(['Mcp-Name', headerValue(n)]);
    }
  } else {
    headers.push(['MCP-Protocol-Version', '2025-11-25']);
  }
  return { wire, session: wire === 'session' ? session : null, headers: [...headers, ...extra], body: body ?? JSON.stringify(payload) };
}

/** Every spelling of `file:///secret/a` and of paths that end there. */
export const SECRET_SPELLINGS = [
  'file:///secret/a', 'FILE:///secret/a', 'file:///secret/%61', 'file:///%73ecret/a',
  'file://localhost/secret/a', 'file://LOCALHOST/secret/a', 'file:/secret/a', 'file:secret/a',
  'file:////secret/a', 'file:///secret//a', 'file:///public/../secret/a', 'file:///public/%2e%2e/secret/a',
  'file:///public/%2E%2E/secret/a', 'file:///public/.%2e/secret/a', 'file:///public/..%2fsecret/a',
  'file:///public%2f..%2fsecret%2fa', 'file:///public/a/../../secret/a', 'file:///public\\..\\secret\\a',
  'file:///public/./../secret/a', 'file://127.0.0.1/secret/a', 'file://[::1]/secret/a',
  'file:///secret/a?x=1', 'file:///secret/a#f', 'file:///secret/a%00', 'file:///secret/a%2f..%2fb',
  ' file:///secret/a', 'file:///secret/a ', 'file:///se\tcret/a', 'file:///se\ncret/a',
  'file:///ｓecret/a', 'file:///secret/%C3%A9', 'file:%2F%2F%2Fsecret/a', 'file:/%2Fsecret/a',
  'file:///public/a/..', 'file:///public/a%2F..%2F..%2Fsecret%2Fa',
];

/**
 * The corpus. Header values and paths may name `@alice` or `@bob`
 * (alice's or bob's session id); `session` is whose session id the
 * request carries ("own", "alice" or none); `dropVersion` removes the
 * MCP-Protocol-Version header.
 */
export function corpus() {
  const cases = [];
  const add = (klass, name, req, opts = {}) => cases.push({ klass, name, ...req, ...opts });
  for (const wire of ['session', 'stateless']) {
    const w = (n) => `${n} (${wire})`;
    // Positive controls.
    add('control', w('bob whoami'), request(call('whoami'), wire), { control: true });
    add('control', w('bob reads file:///public/a'), request(read('file:///public/a'), wire), { control: true });
    add('control', w('bob gets the hello prompt'), request(rpc('prompts/get', { name: 'hello' }), wire), { control: true });
    add('control', w('alice deletes'), request(call('delete_todo', { id: 1 }), wire), { who: 'alice', control: true });
    add('control', w('alice reads file:///secret/a'), request(read('file:///secret/a'), wire), { who: 'alice', control: true });
    // What bob's token does not allow.
    add('policy', w('bob deletes'), request(call('delete_todo', { id: 1 }), wire));
    add('policy', w('bob adds'), request(call('add_todo', { title: 'x' }), wire));
    add('policy', w('bob gets the secret prompt'), request(rpc('prompts/get', { name: 'secret_prompt' }), wire));

    // Charset and media type: UTF-8 JSON only.
    // Read as UTF-8: whoami with an ignored string. Read as UTF-7 (as
    // express.json() does): a second "name": "delete_todo", which wins.
    const smuggle = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{"id":1},"x":"+ACIALAAi-name+ACIAOgAi-delete_todo"}}';
    for (const ct of ['application/json; charset=utf-7', 'application/json; charset=UTF-7', 'application/json;charset="utf-7"', 'application/json; charset=utf7']) {
      add('charset', w(`UTF-7 smuggling (${ct})`), request(call('whoami'), wire, { contentType: ct, body: smuggle }));
    }
    const del = JSON.stringify(wire === 'stateless' ? { ...call('delete_todo', { id: 1 }), params: { name: 'delete_todo', arguments: { id: 1 }, _meta: META } } : call('delete_todo', { id: 1 }));
    for (const [enc, cs] of [['utf16le', 'utf-16le'], ['utf16le', 'utf-16'], ['latin1', 'latin1'], ['latin1', 'iso-8859-1']]) {
      add('charset', w(`delete in ${cs}`), request(call('delete_todo', { id: 1 }), wire, { contentType: `application/json; charset=${cs}`, body: Buffer.from(del, enc) }));
    }
    for (const ct of ['text/plain', 'application/json-seq', 'application/x-www-form-urlencoded', 'application/json; foo=bar', 'application/vnd.api+json', 'APPLICATION/JSON; CHARSET=UTF-8']) {
      add('media-type', w(`Content-Type ${ct}`), request(call('delete_todo', { id: 1 }), wire, { contentType: ct }));
    }
    add('media-type', w('no Content-Type'), request(call('delete_todo', { id: 1 }), wire, { contentType: null }));
    add('media-type', w('two Content-Types'), request(call('whoami'), wire, { extra: [['Content-Type', 'application/json; charset=utf-7']], body: smuggle }));
    // Content encodings: every value read.
    for (const [enc, zip] of [['gzip', gzipSync], ['deflate', deflateSync], ['identity, gzip', gzipSync], ['x-gzip', gzipSync]]) {
      add('encoding', w(`Content-Encoding ${enc}`), request(call('delete_todo', { id: 1 }), wire, { extra: [['Content-Encoding', enc]], body: zip(Buffer.from(del)) }));
    }
    add('encoding', w('two Content-Encodings'), request(call('delete_todo', { id: 1 }), wire, { extra: [['Content-Encoding', 'identity'], ['Content-Encoding', 'gzip']], body: gzipSync(Buffer.from(del)) }));

    // Duplicated and escaped keys, Unicode escapes.
    const edit = (m, f) => request(m, wire, { body: f(request(m, wire).body) });
    const who = call('whoami');
    add('json', w('name twice, delete last'), edit(who, (s) => s.replace('"name":"whoami"', '"name":"whoami","name":"delete_todo"')));
    add('json', w('name twice, delete first'), edit(who, (s) => s.replace('"name":"whoami"', '"name":"delete_todo","name":"whoami"')));
    add('json', w('params twice'), edit(who, (s) => s.replace('"params":{', '"params":{"name":"delete_todo","arguments":{"id":1}},"params":{')));
    add('json', w('method twice'), edit(who, (s) => s.replace('"method":"tools/call"', '"method":"ping","method":"tools/call"')));
    add('json', w('escaped key'), edit(who, (s) => s.replace('"name":"whoami"', '"n\\u0061me":"whoami","name":"delete_todo"')));
    add('json', w('escaped value'), edit(who, (s) => s.replace('"name":"whoami"', '"name":"delete\\u005ftodo"')));
    add('json', w('escaped method'), edit(call('delete_todo', { id: 1 }), (s) => s.replace('"method":"tools/call"', '"method":"tools\\/call"')));
    add('json', w('__proto__ name'), edit(who, (s) => s.replace('"name":"whoami"', '"__proto__":{"name":"delete_todo"},"name":"whoami"')));
    add('json', w('constructor key'), edit(who, (s) => s.replace('"params":{', '"constructor":{"name":"delete_todo"},"params":{')));
    for (const n of ['WhoAmI', 'whoami ', ' whoami', 'whoami\u0000', 'who\u200bami', 'whоami', 'delete_todo\u0000', 'DELETE_TODO', 'delete_todo ']) {
      add('json', w(`tool named ${JSON.stringify(n)}`), request(call(n, { id: 1 }), wire));
    }
    add('json', w('byte-order mark'), request(call('delete_todo', { id: 1 }), wire, { body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(del)]) }));
    add('json', w('comment'), request(call('delete_todo', { id: 1 }), wire, { body: `/*x*/${del}` }));
    add('json', w('trailing bytes'), request(call('delete_todo', { id: 1 }), wire, { body: `${del}{"x":1}` }));
    add('json', w('params as array'), edit(call('delete_todo', { id: 1 }), (s) => s.replace(/"params":\{.*\}\}$/, '"params":["delete_todo"]}')));
    add('json', w('jsonrpc 1.0'), edit(call('delete_todo', { id: 1 }), (s) => s.replace('"jsonrpc":"2.0"', '"jsonrpc":"1.0"')));
    add('json', w('id as object'), edit(call('delete_todo', { id: 1 }), (s) => s.replace(/"id":\d+/, '"id":{"x":1}')));
    add('json', w('deeply nested arguments'), edit(who, (s) => s.replace('"arguments":{}', `"arguments":{"x":${'['.repeat(2000)}${']'.repeat(2000)}}`)));

    // Resource URI spellings.
    for (const uri of SECRET_SPELLINGS) {
      add('uri', w(`bob reads ${JSON.stringify(uri)}`), request(read(uri), wire));
    }
    for (const uri of ['file:///secret/{name}', 'file://localhost/secret/{name}', 'file:secret/{name}']) {
      add('uri', w(`bob completes ${uri}`), request(rpc('completion/complete', { ref: { type: 'ref/resource', uri }, argument: { name: 'name', value: '' } }), wire));
    }
    for (const uri of ['file:///public/b', 'file:///public/caf%C3%A9', 'file:///public/a?x', 'file:///public/a#/../../secret/a', 'file:///public/a?../../secret/a']) {
      add('uri', w(`bob reads ${JSON.stringify(uri)}`), request(read(uri), wire));
    }

    // Identity look-alikes and re-routing headers.
    add('headers', w('x_mcp_subject look-alike'), request(call('whoami'), wire, { extra: [['x_mcp_subject', 'alice'], ['X_MCP_SCOPES', 'todo:delete']] }));
    add('headers', w('forged identity headers'), request(call('whoami'), wire, { extra: [['X-MCP-Subject', 'alice'], ['x-mcp-scopes', 'todo:delete']] }));
    add('headers', w('method override'), request(call('whoami'), wire, { extra: [['X-HTTP-Method-Override', 'DELETE'], ['X-Method-Override', 'PUT']] }));
    add('headers', w('Forwarded'), request(call('whoami'), wire, { extra: [['Forwarded', 'for=10.0.0.1;host=admin'], ['X-Forwarded-Host', 'admin'], ['X-Forwarded-Prefix', '/admin']] }));
    for (const named of ['MCP-Protocol-Version', 'keep-alive, mcp-protocol-version', 'Mcp-Session-Id', 'Content-Type', 'Content-Encoding', 'Authorization', 'x-mcp-subject', 'Mcp-Method']) {
      add('connection', w(`Connection: ${named}`), request(call('delete_todo', { id: 1 }), wire, { extra: [['Connection', named]] }));
    }
    add('headers', w('MCP-Protocol-Version twice'), request(call('whoami'), wire, { extra: [['MCP-Protocol-Version', wire === 'stateless' ? '2025-11-25' : STATELESS]] }));
    add('headers', w('Mcp-Method disagrees'), request(call('delete_todo', { id: 1 }), wire, { extra: [['Mcp-Method', 'tools/list']] }));

    // Neighbours of the classes above: parameter repeats and whitespace,
    // charset aliases, comma-joined values, odd encodings, escaped `_meta`
    // keys, invalid UTF-8 in an ignored string.
    for (const ct of [
      'application/json; charset=utf-8; charset=utf-7', 'application/json; charset=utf-7; charset=utf-8',
      'application/json;charset = utf-7', 'application/json;\tcharset=utf-7', 'application/json; CHARSET=UTF-7',
      'application/json; charset=unicode-1-1-utf-7', 'application/json; charset=csUnicode11UTF7',
      'application/json; charset="utf\\-7"', 'application/json; charset=utf-8, application/json; charset=utf-7',
      'application/json, application/json; charset=utf-7', 'application/json; x="a;charset=utf-8"; charset=utf-7',
    ]) {
      add('charset', w(`UTF-7 smuggling (${ct})`), request(call('whoami'), wire, { contentType: ct, body: smuggle }));
    }
    add('media-type', w('Content-Type twice in other cases'), request(call('whoami'), wire, { contentType: null, extra: [['content-type', 'application/json'], ['CONTENT-TYPE', 'application/json; charset=utf-7']], body: smuggle }));
    for (const [enc, body] of [['GZIP', gzipSync(Buffer.from(del))], ['gzip, identity', gzipSync(Buffer.from(del))], [',gzip', gzipSync(Buffer.from(del))], ['identity, identity', Buffer.from(del)], ['br', brotliCompressSync(Buffer.from(del))], ['', Buffer.from(del)]]) {
      add('encoding', w(`Content-Encoding ${JSON.stringify(enc)}`), request(call('delete_todo', { id: 1 }), wire, { extra: [['Content-Encoding', enc]], body }));
    }
    add('json', w('escaped method, delete'), edit(call('delete_todo', { id: 1 }), (s) => s.replace('"method":"tools/call"', '"method":"tools\\u002fcall"')));
    add('json', w('invalid UTF-8 before a second name'), request(call('whoami'), wire, { body: Buffer.concat([Buffer.from(request(call('whoami'), wire).body.replace('"name":"whoami"', '"name":"whoami","x":"')), Buffer.from([0xe2, 0x22]), Buffer.from(',"name":"delete_todo"')]) }));
    add('json', w('id and method repeated inside a batch-like array'), request(call('whoami'), wire, { body: `[${JSON.stringify(call('whoami'))},[${JSON.stringify(call('delete_todo', { id: 1 }))}]]` }));
    for (const path of ['/MCP', '/mcp/', '//mcp', '/./mcp', '/mcp/.', '/%6dcp', '/mcp%2f', '/mcp;x', '/x/../mcp']) {
      add('path', w(`delete at ${path}`), { ...request(call('delete_todo', { id: 1 }), wire), path });
    }
    add('path', w('absolute-form request target'), { ...request(call('whoami'), wire), path: 'http://admin.example/mcp' }, { control: true });
    add('path', w('delete at the metadata path'), { ...request(call('delete_todo', { id: 1 }), wire), path: '/.well-known/oauth-protected-resource/mcp' });
    add('headers', w('Expect: 100-continue'), request(call('whoami'), wire, { extra: [['Expect', '100-continue']] }), { control: true });
    // JSON-RPC shapes around a call: a notification, a null id, no
    // `jsonrpc`, a method in another case, a name of another type.
    const shape = (f) => edit(call('delete_todo', { id: 1 }), f);
    add('json', w('delete as a notification (no id)'), shape((s) => s.replace(/"id":\d+,/, '')));
    add('json', w('delete with a null id'), shape((s) => s.replace(/"id":\d+/, '"id":null')));
    add('json', w('delete without jsonrpc'), shape((s) => s.replace('"jsonrpc":"2.0",', '')));
    add('json', w('Tools/Call'), shape((s) => s.replace('"method":"tools/call"', '"method":"Tools/Call"')));
    add('json', w('name as an array'), shape((s) => s.replace('"name":"delete_todo"', '"name":["delete_todo"]')));
  }

  // Sessions: alice's session used by bob.
  const list = rpc('tools/list');
  add('session', 'bob in alice\'s session', request(call('whoami'), 'session', { session: 'alice' }));
  add('session', 'bob in alice\'s session, stateless header', request(call('whoami'), 'stateless', { extra: [['Mcp-Session-Id', '@alice']] }));
  add('session', 'bob in alice\'s session, stateless header, version header dropped by Connection', request(call('whoami'), 'stateless', { extra: [['Mcp-Session-Id', '@alice'], ['Connection', 'keep-alive, MCP-Protocol-Version']] }));
  add('session', 'bob in alice\'s session, body _meta 2025-11-25', request(call('whoami'), 'session', {
    session: 'alice',
    body: JSON.stringify({ ...call('whoami'), params: { name: 'whoami', arguments: {}, _meta: { 'io.modelcontextprotocol/protocolVersion': '2025-11-25' } } }),
  }));
  add('session', 'bob in alice\'s session, no version header', { ...request(call('whoami'), 'session', { session: 'alice' }), dropVersion: true });
  add('session', 'two session ids, bob\'s then alice\'s', request(call('whoami'), 'session', { extra: [['Mcp-Session-Id', '@alice']] }));
  add('session', 'mcp_session_id look-alike (alice\'s)', { ...request(call('whoami'), 'session', { session: null, extra: [['mcp_session_id', '@alice']] }) });
  add('session', 'alice\'s session in the query string', { ...request(call('whoami'), 'session', { session: null }), path: '/mcp?sessionId=@alice&session_id=@alice' });
  add('session', 'bob ends alice\'s session', { method: 'DELETE', wire: 'session', session: 'alice', headers: [['MCP-Protocol-Version', '2025-11-25']], body: '' });
  add('session', 'bob opens alice\'s stream', { method: 'GET', wire: 'session', session: 'alice', headers: [['Accept', 'text/event-stream'], ['MCP-Protocol-Version', '2025-11-25']], body: '' });
  add('session', 'bob resumes a stream (Last-Event-ID)', { method: 'GET', wire: 'session', session: 'own', headers: [['Accept', 'text/event-stream'], ['Last-Event-ID', '0']], body: '' });

  // Batches (the session wire only; the stateless wire has none).
  const batch = (msgs, name) => add('batch', name, request(msgs, 'session'));
  batch([call('delete_todo', { id: 1 })], 'batch [delete]');
  batch([call('whoami'), call('delete_todo', { id: 1 })], 'batch [whoami, delete]');
  batch([list, rpc('ping')], 'batch [tools/list, ping] (lists filtered)');
  batch([rpc('resources/templates/list')], 'batch [resources/templates/list]');
  batch([call('whoami'), read('file:///public/a')], 'batch [whoami, read public]');

  // HTTP methods.
  for (const method of ['PUT', 'PATCH', 'post', 'Post', 'OPTIONS', 'PROPFIND']) {
    add('method', `${method} with a delete body`, { ...request(call('delete_todo', { id: 1 }), 'session'), method });
  }
  add('method', 'GET with a delete body', { ...request(call('delete_todo', { id: 1 }), 'session'), method: 'GET' });
  add('method', 'DELETE with a delete body', { ...request(call('delete_todo', { id: 1 }), 'session'), method: 'DELETE' });
  for (const method of ['HEAD', 'TRACE', 'MOVE']) {
    add('method', `${method} with a delete body`, { ...request(call('delete_todo', { id: 1 }), 'session'), method });
  }

  // Neighbours of the session cases: comma-joined and repeated values in
  // other cases, an escaped or repeated `_meta` version key.
  {
    const r = request(call('whoami'), 'stateless', { extra: [['Mcp-Session-Id', '@alice']] });
    r.headers = r.headers.map(([k, v]) => (k === 'MCP-Protocol-Version' ? [k, `${STATELESS}, 2025-11-25`] : [k, v]));
    add('session', 'one version header holding both versions, alice\'s session', r);
  }
  add('session', 'version header twice in other cases, alice\'s session', request(call('whoami'), 'session', { session: 'alice', extra: [['mcp-protocol-version', STATELESS]] }));
  add('session', 'one session header holding alice\'s and bob\'s ids', request(call('whoami'), 'session', { session: null, extra: [['Mcp-Session-Id', '@alice, @bob']] }));
  add('session', 'session header twice in other cases', request(call('whoami'), 'session', { extra: [['mcp-session-id', '@alice']] }));
  const metaBody = (key) => `{"jsonrpc":"2.0","id":77,"method":"tools/call","params":{"name":"whoami","arguments":{},"_meta":{${key}}}}`;
  add('session', 'escaped stateless _meta key, alice\'s session', request(call('whoami'), 'session', { session: 'alice', body: metaBody(`"io.modelcontextprotocol\\/protocolVersion":"${STATELESS}"`) }));
  add('session', 'stateless _meta key twice, alice\'s session', request(call('whoami'), 'session', { session: 'alice', body: metaBody(`"io.modelcontextprotocol/protocolVersion":"${STATELESS}","io.modelcontextprotocol/protocolVersion":"2025-11-25"`) }));
  add('session', '_meta twice, alice\'s session', request(call('whoami'), 'session', { session: 'alice', body: metaBody(`"io.modelcontextprotocol/protocolVersion":"2025-11-25"},"_meta":{"io.modelcontextprotocol/protocolVersion":"${STATELESS}"`) }));
  add('session', 'Last-Event-ID on a POST in alice\'s session', request(call('whoami'), 'session', { session: 'alice', extra: [['Last-Event-ID', '0']] }));
  return cases;
}

/** A small seeded generator (mulberry32), so a failing case can be replayed. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `n` generated mutations from `seed`: URI spellings composed from several
 * transformations (scheme case, host forms, slash forms, percent-encoded
 * characters, dot segments, query and fragment, doubled and trailing
 * slashes), tool names with escaped characters and duplicated keys in
 * random order, header names in random case and duplicated
 * `Content-Type`s, each on a random wire.
 */
export function generated(n, seed) {
  const random = rng(seed);
  const pick = (xs) => xs[Math.floor(random() * xs.length)];
  const cases = [];
  const enc = (c) => {
    const hex = c.charCodeAt(0).toString(16).padStart(2, '0');
    return `%${random() < 0.5 ? hex : hex.toUpperCase()}`;
  };
  for (let i = 0; i < n; i++) {
    const wire = pick(['session', 'stateless']);
    const kind = pick(['uri', 'uri', 'json', 'headers']);
    if (kind === 'uri') {
      let path = `/${pick(['secret', 'public'])}/${pick(['a', 'b', 'caf%C3%A9'])}`;
      if (random() < 0.3) path = path.replace(/[a-z]/, (c) => enc(c));
      if (random() < 0.2) path = path.replace('/', pick(['/./', '/x/../', '//']));
      if (random() < 0.2) path += pick(['/', '?x', '#y', '?../../secret/a', '#/../secret/a']);
      const scheme = pick(['file', 'FILE', 'File']);
      const host = pick(['', '', 'localhost', 'LOCALHOST', '127.0.0.1', '[::1]']);
      const uri = random() < 0.2 && host === '' ? `${scheme}:${pick(['', '/'])}${path.slice(1)}` : `${scheme}://${host}${path}`;
      cases.push({ klass: 'generated-uri', name: `#${i} bob reads ${JSON.stringify(uri)} (${wire})`, ...request(read(uri), wire) });
    } else if (kind === 'json') {
      const names = ['whoami', 'delete_todo'];
      if (random() < 0.5) names.reverse();
      const escape = (name) => name.replace(/[a-z_]/g, (c) => (random() < 0.2 ? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}` : c));
      const key = () => escape('name');
      const pairs = random() < 0.5 ? `"${key()}":"${escape(names[0])}","${key()}":"${escape(names[1])}"` : `"${key()}":"${escape(names[0])}"`;
      const m = call('whoami', { id: 1 });
      const body = request(m, wire).body.replace('"name":"whoami"', pairs);
      cases.push({ klass: 'generated-json', name: `#${i} ${pairs} (${wire})`, ...request(m, wire, { body }) });
    } else {
      const caseOf = (h) => h.replace(/[a-z]/g, (c) => (random() < 0.5 ? c.toUpperCase() : c));
      const req = request(call(pick(['whoami', 'delete_todo']), { id: 1 }), wire);
      req.headers = req.headers.map(([k, v]) => [caseOf(k), v]);
      if (random() < 0.5) req.headers.push([caseOf('content-type'), pick(['application/json; charset=utf-7', 'application/json', 'text/plain', 'application/json; charset=utf-8'])]);
      if (random() < 0.3) req.headers.push([caseOf('connection'), pick(['keep-alive', 'close', 'mcp-method', 'keep-alive, Content-Type'])]);
      cases.push({ klass: 'generated-headers', name: `#${i} ${JSON.stringify(req.headers.slice(2))} (${wire})`, ...req });
    }
  }
  return cases;
}
