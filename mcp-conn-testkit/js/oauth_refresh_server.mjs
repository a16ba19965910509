// An OAuth-protected MCP server built from the official TypeScript SDK's own
// parts: its authorization router (`mcpAuthRouter`: metadata, dynamic
// registration, authorize with PKCE, the token endpoint with its
// `refresh_token` grant), its bearer-token middleware and its Streamable
// HTTP server. Only the token bookkeeping is ours: the SDK's demo provider
// issues no refresh tokens, so this one does (one-hour access tokens,
// rotated refresh tokens), and consent is automatic.
//
// For the tests, two control endpoints (loopback only):
//   POST /test/expire-access-tokens   every access token expires now
//   POST /test/revoke-refresh-tokens  every refresh token is forgotten
// and GET /test/counts gives {authorizations, refreshes}.
//
// Usage: node oauth_refresh_server.mjs NODE_MODULES_DIR PORT
// Prints "listening on PORT" once ready.

import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [nodeModules, portText] = process.argv.slice(2);
const port = Number(portText);
const sdk = (p) => import(pathToFileURL(join(nodeModules, '@modelcontextprotocol/sdk/dist/esm', p)).href);

const { mcpAuthRouter, getOAuthProtectedResourceMetadataUrl } = await sdk('server/auth/router.js');
const { requireBearerAuth } = await sdk('server/auth/middleware/bearerAuth.js');
const { DemoInMemoryClientsStore } = await sdk('examples/server/demoInMemoryOAuthProvider.js');
const { InvalidTokenError, InvalidGrantError } = await sdk('server/auth/errors.js');
const { McpServer } = await sdk('server/mcp.js');
const { StreamableHTTPServerTransport } = await sdk('server/streamableHttp.js');
const express = (await import(pathToFileURL(join(nodeModules, 'express/index.js')).href)).default;

const base = `http://localhost:${port}`;
const mcpUrl = new URL(`${base}/mcp`);

class RefreshingProvider {
  constructor() {
    this.clientsStore = new DemoInMemoryClientsStore();
    this.codes = new Map();
    this.access = new Map();
    this.refresh = new Map();
    this.counts = { authorizations: 0, refreshes: 0 };
  }
  async authorize(client, params, res) {
    const code = randomUUID();
    this.codes.set(code, { client, params });
    this.counts.authorizations += 1;
    const target = new URL(params.redirectUri);
    target.searchParams.set('code', code);
    if (params.state !== undefined) target.searchParams.set('state', params.state);
    res.redirect(target.toString());
  }
  async challengeForAuthorizationCode(_client, code) {
    const data = this.codes.get(code);
    if (!data) throw new Error('Invalid authorization code');
    return data.params.codeChallenge;
  }
  issue(clientId, scopes, resource) {
    const token = randomUUID();
    const refreshToken = randomUUID();
    this.access.set(token, { token, clientId, scopes, resource, expiresAt: Date.now() + 3600_000 });
    this.refresh.set(refreshToken, { clientId, scopes, resource });
    return {
      access_token: token,
      token_type: 'bearer',
      expires_in: 3600,
      refresh_token: refreshToken,
      scope: scopes.join(' '),
    };
  }
  async exchangeAuthorizationCode(client, code) {
    const data = this.codes.get(code);
    if (!data || data.client.client_id !== client.client_id) throw new InvalidGrantError('Invalid authorization code');
    this.codes.delete(code);
    return this.issue(client.client_id, data.params.scopes || [], data.params.resource);
  }
  async exchangeRefreshToken(client, refreshToken, scopes) {
    const data = this.refresh.get(refreshToken);
    if (!data || data.clientId !== client.client_id) throw new InvalidGrantError('Invalid refresh token');
    this.refresh.delete(refreshToken); // rotated
    this.counts.refreshes += 1;
    return this.issue(client.client_id, scopes && scopes.length ? scopes : data.scopes, data.resource);
  }
  async verifyAccessToken(token) {
    const data = this.access.get(token);
    if (!data || data.expiresAt < Date.now()) throw new InvalidTokenError('Invalid or expired token');
    return {
      token,
      clientId: data.clientId,
      scopes: data.scopes,
      expiresAt: Math.floor(data.expiresAt / 1000),
      resource: data.resource,
    };
  }
}

const provider = new RefreshingProvider();
const app = express();
app.use(mcpAuthRouter({
  provider,
  issuerUrl: new URL(base),
  resourceServerUrl: mcpUrl,
  scopesSupported: ['mcp:tools'],
}));
app.post('/test/expire-access-tokens', (_req, res) => {
  for (const data of provider.access.values()) data.expiresAt = 0;
  res.json({ ok: true });
});
app.post('/test/revoke-refresh-tokens', (_req, res) => {
  provider.refresh.clear();
  res.json({ ok: true });
});
app.get('/test/counts', (_req, res) => res.json(provider.counts));

const auth = requireBearerAuth({
  verifier: provider,
  resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(mcpUrl),
});
app.post('/mcp', express.json(), auth, async (req, res) => {
  // Stateless: a server and a transport per request.
  const server = new McpServer({ name: 'ts-oauth-refresh', version: '1.0.0' });
  server.tool('whoami', 'Says which client the token belongs to', async (extra) => ({
    content: [{ type: 'text', text: `client ${extra.authInfo?.clientId ?? 'unknown'}` }],
  }));
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => { transport.close(); server.close(); });
  await server.connect(transport);
  await transport.handleRequest(req, res, req.body);
});

app.listen(port, '127.0.0.1', () => console.log(`listening on ${port}`));
