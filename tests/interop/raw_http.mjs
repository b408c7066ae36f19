// One HTTP/1.1 request with exactly these bytes: any method spelling,
// repeated or oddly cased headers, any body; the answer read as far as one
// JSON-RPC reply (a JSON body, or the SSE events up to a response).
import net from 'node:net';

/**
 * Sends `method path` to 127.0.0.1:port with `headers` (an array of
 * [name, value], sent as given) and `body` (a Buffer or string). Adds
 * `Host` and `Content-Length` unless given. Resolves to {status, headers
 * (lowercased names, values joined), body (string)}.
 */
export function sendRaw(port, { method = 'POST', path = '/mcp', headers = [], body = '' }) {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const names = headers.map(([k]) => k.toLowerCase());
  const all = [...headers];
  if (!names.includes('host')) all.unshift(['Host', `127.0.0.1:${port}`]);
  if (!names.includes('content-length') && !names.includes('transfer-encoding') && (bytes.length > 0 || method === 'POST')) {
    all.push(['Content-Length', String(bytes.length)]);
  }
  const head = `${method} ${path} HTTP/1.1\r\n${all.map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (r) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    // An SSE stream that never answers (a GET stream) ends the read here.
    const timer = setTimeout(() => finish(parse(buf, true) ?? { status: 0, headers: {}, body: '' }), 3000);
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const r = parse(buf, false);
      if (r) finish(r);
    });
    socket.on('end', () => finish(parse(buf, true) ?? { status: 0, headers: {}, body: buf.toString() }));
    socket.on('error', (e) => (done ? undefined : reject(e)));
    socket.write(Buffer.concat([Buffer.from(head, 'latin1'), bytes]));
  });
}

/** The response in `buf` if it is complete (or `eof`); else null. */
function parse(buf, eof) {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(lines[0].split(' ')[1]);
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    const k = l.slice(0, i).trim().toLowerCase();
    const v = l.slice(i + 1).trim();
    headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
  }
  let rest = buf.subarray(end + 4);
  if ((headers['transfer-encoding'] ?? '').toLowerCase().includes('chunked')) {
    const out = [];
    for (;;) {
      const nl = rest.indexOf('\r\n');
      if (nl < 0) break;
      const size = parseInt(rest.subarray(0, nl).toString(), 16);
      if (Number.isNaN(size) || rest.length < nl + 2 + size + 2) break;
      if (size === 0) return { status, headers, body: Buffer.concat(out).toString() };
      out.push(rest.subarray(nl + 2, nl + 2 + size));
      rest = rest.subarray(nl + 2 + size + 2);
    }
    rest = Buffer.concat(out);
  } else if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    if (rest.length >= n) return { status, headers, body: rest.subarray(0, n).toString() };
    return eof ? { status, headers, body: rest.toString() } : null;
  }
  const body = rest.toString();
  if (status === 204 || status === 202 || status === 304) return { status, headers, body: '' };
  // An SSE answer: complete once it holds a JSON-RPC response.
  if ((headers['content-type'] ?? '').startsWith('text/event-stream') && /"(result|error)"\s*:/.test(body)) {
    const last = body.lastIndexOf('\n\n');
    if (last >= 0 && /"(result|error)"\s*:/.test(body.slice(0, last))) return { status, headers, body };
  }
  return eof ? { status, headers, body } : null;
}
