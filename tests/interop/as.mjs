// A real authorization server for the interop suite: oidc-provider with the
// client_credentials grant and resource indicators, issuing JWT access tokens
// bound to the todo server's URL (one client per signing algorithm) and
// opaque ones (client `cc-opaque`), with introspection (JSON and RFC 9701
// signed responses, for the resource server's client `todo-rs`) and
// revocation.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

export const SCOPES = 'todo:read todo:write todo:delete';
export const ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'];
export const SECRET = 'interop-secret';
export const clientFor = (alg) => `cc-${alg.toLowerCase()}`;
export const OPAQUE_CLIENT = 'cc-opaque';
export const RS_CLIENT = 'todo-rs';

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
/** `resource` is one resource URL or a list of them. */
export async function startAuthorizationServer({ port, resource, jwks }) {
  const resources = [resource].flat();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [...ALGS.map(clientFor), OPAQUE_CLIENT].map((client_id) => ({
      client_id,
      client_secret: SECRET,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: SCOPES,
    })).concat([{
      // The todo server itself, introspecting.
      client_id: RS_CLIENT,
      client_secret: SECRET,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      introspection_signed_response_alg: 'ES256',
    }]),
    scopes: SCOPES.split(' '),
    jwks,
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      jwtIntrospection: { enabled: true },
      revocation: { enabled: true },
      dPoP: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resources[0],
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, indicator, client) => {
          if (!resources.includes(indicator)) throw new errors.InvalidTarget();
          const alg = ALGS.find((a) => clientFor(a) === client.clientId) ?? 'RS256';
          return {
            scope: SCOPES,
            audience: indicator,
            accessTokenTTL: 600,
            ...(client.clientId === OPAQUE_CLIENT
              ? { accessTokenFormat: 'opaque' }
              : { accessTokenFormat: 'jwt', jwt: { sign: { alg } } }),
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
