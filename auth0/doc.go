// Package auth0 is the gateway's Auth0 integration: a receiver for Auth0 log
// streams (custom webhook) that "promotes" MCP clients which registered
// themselves through OIDC Dynamic Client Registration (DCR), so that they can
// actually log in, and a health report of that machinery.
//
// A client that registers at https://<tenant>/oidc/register (a ChatGPT or
// Claude connector, for example) is created by Auth0 as a third-party
// application with no enabled connection and no grant on the gateway's API,
// so its first login fails. Auth0 logs the registration; a log stream posts
// the log to the gateway (mounted at POST /webhooks/auth0/logs), and for each
// successful registration the Webhook, through the Auth0 Management API:
//
//  1. makes the client a public authorization-code client: PATCH
//     /api/v2/clients/{id} with app_type "regular_web",
//     token_endpoint_auth_method "none", grant_types [authorization_code,
//     refresh_token] and oidc_conformant true. Auth0 requires PKCE for the
//     authorization-code flow of a public client (one without a secret), so
//     no separate PKCE switch exists or is set;
//  2. enables the configured connection (default google-oauth2) for it: GET
//     /api/v2/connections?name=<connection>, then PATCH
//     /api/v2/connections/{id} with enabled_clients = the existing list plus
//     the client. On tenants whose connection objects no longer carry
//     enabled_clients (Auth0 deprecated that property in favour of the
//     /connections/{id}/clients endpoints) the Webhook never writes a list it
//     could not read — that would disable every other application — and
//     instead enables the one client with PATCH
//     /api/v2/connections/{id}/clients [{client_id, status: true}], which is
//     idempotent by itself;
//  3. ensures a client grant on the configured audience with every
//     configured scope: GET /api/v2/client-grants?client_id=&audience=; none
//     → POST /api/v2/client-grants; one lacking scopes → PATCH
//     /api/v2/client-grants/{id} with the union.
//
// Each step reads the current state first and writes only what is missing,
// so a promotion can be repeated at no cost beyond the reads; log ids already
// handled are remembered (a bounded set) so a replayed batch does nothing at
// all. The Management API token (client credentials, audience
// <management_url>/api/v2/) is cached until shortly before it expires and
// fetched again once when the API answers 401.
//
// The first attempt runs while the log stream waits, within a short budget;
// an attempt that fails with a transient error (network, timeout, 429, 5xx,
// a client not yet visible) is handed to a background worker that retries it
// with exponential backoff up to a bounded number of attempts. Failures,
// pending retries and whether a token can be had are reported by Health.
package auth0
