// A real authorization server for the interop suite: oidc-provider with the
// client_credentials grant and resource indicators, issuing JWT access tokens
// bound to the todo server's URL. One client per signing algorithm.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

export const SCOPES = 'todo:read todo:write todo:delete';
export const ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'];
export const SECRET = 'interop-secret';
export const clientFor = (alg) => `cc-${alg.toLowerCase()}`;

/** A fresh private JWK set: one key per algorithm, each with its own kid. */
export function generateKeys() {
  const make = (alg) => {
    const pair =
      alg === 'RS256' || alg === 'PS256'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : alg === 'ES256'
          ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
          : generateKeyPairSync('ed25519');
    return { ...pair.privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid: `${alg}-${randomUUID()}` };
  };
  return { keys: ALGS.map(make) };
}

/** Starts oidc-provider on 127.0.0.1:port; resolves to the node http server. */
export async function startAuthorizationServer({ port, resource, jwks }) {
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: ALGS.map((alg) => ({
      client_id: clientFor(alg),
      client_secret: SECRET,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: SCOPES,
    })),
    scopes: SCOPES.split(' '),
    jwks,
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, indicator, client) => {
          if (indicator !== resource) throw new errors.InvalidTarget();
          const alg = ALGS.find((a) => clientFor(a) === client.clientId) ?? 'RS256';
          return {
            scope: SCOPES,
            audience: resource,
            accessTokenTTL: 600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg } },
          };
        },
      },
    },
  });
  provider.proxy = false;
  const server = provider.listen(port, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return { issuer, server };
}
