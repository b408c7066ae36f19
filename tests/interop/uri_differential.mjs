// The resource URI form the MCP layer judges, against Node's own WHATWG
// URL parser (the one the TypeScript SDK looks resources up with): for
// structured random URIs around the spots where URL parsers disagree
// (special and other schemes, slash forms, IPv4 and IPv6 spellings, IDNA
// mappings, percent-encoded hosts and dots, drive letters, userinfo,
// ports, characters each part encodes differently), whenever the layer
// judges a URI and Node reads it, the layer judges Node's reading the
// same. A URI Node refuses, the TypeScript SDK cannot serve; a URI the
// layer refuses, no server sees.
import { execFileSync } from 'node:child_process';
import { SECRET_SPELLINGS } from './corpus.mjs';

const SCHEMES = ['file', 'FILE', 'http', 'https', 'HTTPS', 'ws', 'wss', 'ftp', 'custom', 'urn', 'mailto', 'data', 'javascript', 'git+ssh', 'x-y.z'];
const HOSTS = ['', 'h', 'H', 'localhost', 'LOCALHOST', 'localhost.', '%6cocalhost', '127.0.0.1', '127.1', '0x7f.1', '0177.0.0.1', '2130706433',
  '1.2.3.4.', '1.2.3.256', '0x100000000', '[::1]', '[::ffff:127.0.0.1]', '[0:0::1]', '[::1%25eth0]', 'a.b', 'A.B.', 'xn--nxasmq6b',
  'XN--NXASMQ6B', 'xn--a', 'xn--', 'faß.de', 'ﬀ.com', 'a\u00adb', 'a\u200db', 'a。b', 'ｈｏｓｔ', 'é', '%C3%A9', 'a%2eb', 'a%00b', 'a b', 'a<b',
  'a^b', 'a|b', "a'b", 'u:p@h', '@h', 'u@', ':@h', 'h:', 'h:443', 'h:0443', 'h:80', 'h:65536', 'h:+1', '_x', '*', 'a..b', '.', '..'];
const SEGMENTS = ['a', 'A', '%61', '%41', '.', '..', '%2e', '%2E%2e', '', 'a b', 'é', '%C3%A9', '%c3%a9', "'", '"', '<', '>', '`', '{', '}', '|',
  '^', '%7C', 'C:', 'c|', 'C%3A', '%43:', '%63:', '~', '%7e', ';x', '@', ':', '!', '$', '&', '(', '*', '+', ',', '=', '%25', '%', '%g1', '%2f',
  '%5c', '\t', '\n'];
const TAILS = ['', '?', '?x', "?'", '?a b', '?%2f', '?%7e', '?é', '#', '#x', '#a b', '#é', "#'", '?x#y', '#%2F', '?`', '#`'];

/** `n` URIs from `seed` (mulberry32, so a failing run can be replayed). */
export function uris(n, seed) {
  let a = seed >>> 0;
  const random = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = (xs) => xs[Math.floor(random() * xs.length)];
  const out = [...SECRET_SPELLINGS];
  for (let i = 0; i < n; i++) {
    const slashes = pick(['', '/', '//', '//', '//', '///', '\\\\', '/\\']);
    const authority = ['//', '\\\\', '/\\'].includes(slashes);
    const host = authority ? pick(HOSTS) : '';
    const path = Array.from({ length: Math.floor(random() * 4) }, () => pick(SEGMENTS)).join('/');
    const lead = authority && (path || random() < 0.5) ? '/' : '';
    out.push(`${pick(['', '', '', ' ', '\t'])}${pick(SCHEMES)}:${slashes}${host}${lead}${path}${pick(TAILS)}`);
  }
  return out;
}

/** The layer's judged forms of `xs` (null: refused), from the `judge_uri` binary. */
function judge(bin, xs) {
  const input = `${xs.map((x) => JSON.stringify(x)).join('\n')}\n`;
  return execFileSync(bin, { input, maxBuffer: 1 << 28 }).toString().trim().split('\n').map((l) => JSON.parse(l));
}

/**
 * Compares `n` URIs from `seed`: {inputs, judged (by the layer and read by
 * Node), disagreements: [...]}, each a URI the layer judges as one form
 * and Node reads as a URL the layer judges as another (or refuses).
 */
export function compare(bin, n, seed) {
  const inputs = uris(n, seed);
  const ours = judge(bin, inputs);
  const read = inputs.map((u, i) => {
    if (ours[i] === null) return null;
    try {
      return [u, ours[i], new URL(u).href];
    } catch {
      return null; // Node refuses it: the TypeScript SDK serves nothing.
    }
  }).filter(Boolean);
  const again = judge(bin, read.map(([, , href]) => href));
  const disagreements = read
    .map(([u, judged, href], i) => (again[i] === judged ? null : { uri: u, judged, node: href, judgedOfNode: again[i] }))
    .filter(Boolean);
  return { inputs: inputs.length, judged: read.length, disagreements };
}

// `node uri_differential.mjs <judge_uri binary> <n> <seed>`: the comparison
// under this Node (the suite runs it under each Node it has), as JSON.
if (process.argv[1] === new URL(import.meta.url).pathname) {
  const [bin, n, seed] = process.argv.slice(2);
  console.log(JSON.stringify({ node: process.version, ...compare(bin, Number(n), Number(seed)) }));
}
