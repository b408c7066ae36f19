// A real authorization server for the interop suite: oidc-provider with the
// client_credentials grant and resource indicators, issuing JWT access tokens
// bound to the todo server's URL (one client per signing algorithm) and
// opaque ones (client `cc-opaque`), with introspection (JSON and RFC 9701
// signed responses, for the resource server's client `todo-rs`) and
// revocation.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider, { errors } from 'oidc-provider';
import * as jose from 'jose';

export const SCOPES = 'todo:read todo:write todo:delete';
export const ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'];
export const SECRET = 'interop-secret';
export const clientFor = (alg) => `cc-${alg.toLowerCase()}`;
export const OPAQUE_CLIENT = 'cc-opaque';
export const RS_CLIENT = 'todo-rs';
export const GATEWAY_CLIENT = 'todo-gateway';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

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

/** Calls to the introspection endpoint so far (the fleet case counts them). */
let introspectionCalls = 0;
export const introspectionCallCount = () => introspectionCalls;

/** Starts oidc-provider on 127.0.0.1:port; resolves to the node http server. */
/** `resource` is one resource URL or a list of them; `extraClients` are
 * more `client_credentials` clients (RS256 JWTs) and `extraTokenClaims`
 * what to add to a client's access tokens (`(clientId) => object`). */
export async function startAuthorizationServer({ port, resource, jwks, extraClients = [], extraTokenClaims }) {
  const resources = [resource].flat();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [...ALGS.map(clientFor), OPAQUE_CLIENT, ...extraClients].map((client_id) => ({
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
    }, {
      // A gateway (an MCP server calling another): its own tokens, and
      // RFC 8693 token exchange.
      client_id: GATEWAY_CLIENT,
      client_secret: SECRET,
      grant_types: ['client_credentials', TOKEN_EXCHANGE],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: SCOPES,
    }]),
    scopes: SCOPES.split(' '),
    jwks,
    ...(extraTokenClaims && {
      extraTokenClaims: async (ctx, token) => extraTokenClaims(token.clientId),
    }),
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
  registerTokenExchange(provider, { issuer, resources, jwks });
  provider.use(async (ctx, next) => {
    if (ctx.method === 'POST' && ctx.path === '/token/introspection') introspectionCalls += 1;
    await next();
  });
  provider.proxy = false;
  const server = provider.listen(port, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return { issuer, server };
}

/**
 * RFC 8693 token exchange, through oidc-provider's custom grant extension
 * point: a JWT access token this server issued (verified with its keys), for
 * one of the resources, with at most its scopes; `act` records the client.
 */
function registerTokenExchange(provider, { issuer, resources, jwks }) {
  const publicKeys = {
    keys: jwks.keys.map(({ d, p, q, dp, dq, qi, ...pub }) => pub),
  };
  const keySet = jose.createLocalJWKSet(publicKeys);
  const signing = jwks.keys.find((k) => k.alg === 'ES256');
  provider.registerGrantType(TOKEN_EXCHANGE, async (ctx) => {
    const { params, client } = ctx.oidc;
    const fail = (error, error_description) => {
      ctx.status = 400;
      ctx.body = { error, error_description };
    };
    if (params.subject_token_type !== ACCESS_TOKEN_TYPE) return fail('invalid_request', 'subject_token_type');
    if (!resources.includes(params.resource)) return fail('invalid_target', 'unknown resource');
    let subject;
    try {
      ({ payload: subject } = await jose.jwtVerify(params.subject_token, keySet, { issuer, typ: 'at+jwt' }));
    } catch {
      return fail('invalid_grant', 'the subject token is not valid here');
    }
    const held = (subject.scope ?? '').split(' ').filter(Boolean);
    const asked = (params.scope ?? subject.scope ?? '').split(' ').filter(Boolean);
    if (asked.some((s) => !held.includes(s))) return fail('invalid_scope', 'a scope the subject token does not hold');
    const now = Math.floor(Date.now() / 1000);
    const exp = Math.min(subject.exp, now + 600);
    const act = subject.act ? { sub: client.clientId, act: subject.act } : { sub: client.clientId };
    const token = await new jose.SignJWT({ scope: asked.join(' '), client_id: subject.client_id, act })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: signing.kid })
      .setIssuer(issuer)
      .setSubject(subject.sub)
      .setAudience(params.resource)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .setJti(randomUUID())
      .sign(await jose.importJWK(signing, 'ES256'));
    ctx.body = { access_token: token, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: exp - now, scope: asked.join(' ') };
  }, ['subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'requested_token_type', 'resource', 'scope', 'audience']);
}
