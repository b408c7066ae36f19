// The authorization server of `scripts/hit_instr.sh --discovered`: the
// interop suite's oidc-provider on 127.0.0.1:PORT, issuing RS256 JWT access
// tokens for RESOURCE of three sizes (a client's groups claim pads the
// larger two, as directory groups do in real deployments). Prints
// `issuer URL`, then `token JWT` lines (small, medium, large), then stays up.
// Usage: node scripts/hit_as.mjs PORT RESOURCE   (after tests/interop's npm install)
import { generateKeys, startAuthorizationServer, SECRET } from '../tests/interop/as.mjs';

const [port, resource] = [Number(process.argv[2]), process.argv[3]];
// Groups per client: about 0.7, 2 and 4.7 KB tokens.
const groups = { 'cc-rs256': 0, 'hit-2k': 30, 'hit-4k': 92 };
const group = (i) => `grp-${String(i).padStart(4, '0')}-platform-engineering`;
const { issuer } = await startAuthorizationServer({
  port,
  resource,
  jwks: generateKeys(),
  extraClients: ['hit-2k', 'hit-4k'],
  extraTokenClaims: (client) =>
    groups[client] ? { groups: Array.from({ length: groups[client] }, (_, i) => group(i)) } : {},
});
console.log(`issuer ${issuer}`);
for (const client of Object.keys(groups)) {
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${client}:${SECRET}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope: 'todo:read' }),
  });
  const body = await res.json();
  if (!body.access_token) throw new Error(`${client}: ${JSON.stringify(body)}`);
  console.log(`token ${body.access_token}`);
}
