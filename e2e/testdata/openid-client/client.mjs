// Gets a client_credentials token from Tokensmith with openid-client (npm), as a Node.js
// integrator would, and optionally calls a resource server with it.
//
// Input on stdin:
//   {"issuer": URL, "ca": PEM (the server's certificate), "client_id": "…",
//    "auth": "private_key_jwt" | "tls_client_auth",
//    "private_jwk": JWK (private_key_jwt: the assertion's key, with its kid),
//    "cert": PEM, "key": PEM (optional: the client certificate presented on every connection),
//    "dpop": true (optional: a DPoP key of its own, made by openid-client),
//    "scope": "…", "resource": URL (optional: GET it with the token)}
//
// Output, one JSON object on stdout: what the server answered (token_type, access_token, or
// error and error_description; wire_token_type as the server spelled it), the DPoP public key
// (dpop_jwk), how many requests reached the token endpoint and how many of its answers asked
// for a DPoP nonce, and the resource's answers: to the token with the DPoP key it is bound to,
// and (DPoP only) with another key and as a bearer token. Refusals are reported, not thrown:
// the caller decides what was expected. The exit status is 1 only when something other than
// the server's answer went wrong.
import * as client from "openid-client";
import { Agent, fetch } from "undici";

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));

// Node's global fetch takes no client certificate: undici's own fetch does, through an Agent
// that also trusts the server's development certificate.
const agent = new Agent({
  connect: { ca: input.ca, ...(input.cert ? { cert: input.cert, key: input.key } : {}) },
});
const out = { token_endpoint_requests: 0, nonce_challenges: 0 };
let tokenEndpoint;
const customFetch = async (url, options) => {
  const response = await fetch(url, { ...options, dispatcher: agent });
  if (url === tokenEndpoint) {
    out.token_endpoint_requests++;
    if (response.status === 400 && response.headers.has("dpop-nonce")) out.nonce_challenges++;
    // openid-client lowercases token_type; the caller checks the server's own spelling.
    if (response.ok) out.wire_token_type = (await response.clone().json()).token_type;
  }
  return response;
};

let auth;
switch (input.auth) {
  case "private_key_jwt": {
    const { kid, alg, ...jwk } = input.private_jwk;
    const key = await crypto.subtle.importKey("jwk", jwk, { name: "ECDSA", namedCurve: jwk.crv }, false, ["sign"]);
    auth = client.PrivateKeyJwt({ key, kid });
    break;
  }
  case "tls_client_auth":
    // openid-client has one method for both mutual-TLS kinds: the request carries client_id
    // and the connection carries the certificate; the server knows which kind it registered.
    auth = client.TlsClientAuth();
    break;
  default:
    throw new Error(`unknown auth ${input.auth}`);
}

const config = await client.discovery(
  new URL(input.issuer),
  input.client_id,
  { use_mtls_endpoint_aliases: input.auth === "tls_client_auth" },
  auth,
  { [client.customFetch]: customFetch },
);
const metadata = config.serverMetadata();
tokenEndpoint =
  input.auth === "tls_client_auth" ? metadata.mtls_endpoint_aliases.token_endpoint : metadata.token_endpoint;
// The example resource server listens on plain HTTP on loopback.
if (input.resource?.startsWith("http:")) client.allowInsecureRequests(config);

let DPoP;
if (input.dpop) {
  const keyPair = await client.randomDPoPKeyPair("ES256");
  DPoP = client.getDPoPHandle(config, keyPair);
  out.dpop_jwk = await crypto.subtle.exportKey("jwk", keyPair.publicKey);
}

let tokens;
try {
  tokens = await client.clientCredentialsGrant(config, input.scope ? { scope: input.scope } : {}, { DPoP });
} catch (e) {
  // The server's refusal: an OAuth error body, or a challenge when it also sent
  // WWW-Authenticate (oauth4webapi reports the challenge first).
  if (e instanceof client.ResponseBodyError) {
    Object.assign(out, { status: e.status, error: e.error, error_description: e.error_description });
  } else if (e instanceof client.WWWAuthenticateChallengeError) {
    const body = await e.response.json().catch(() => ({}));
    Object.assign(out, { status: e.status, error: body.error ?? e.cause[0]?.parameters.error, error_description: body.error_description });
  } else {
    throw e;
  }
  console.log(JSON.stringify(out));
  process.exit(0);
}
out.token_type = tokens.token_type;
out.access_token = tokens.access_token;

// get calls the resource with the token and a DPoP handle (none: as a bearer token). A refusal
// with a challenge is thrown by openid-client; it is reported as the status and the challenge.
const get = async (handle) => {
  try {
    const response = await client.fetchProtectedResource(config, tokens.access_token, new URL(input.resource), "GET", undefined, undefined, { DPoP: handle });
    return { status: response.status, body: await response.text() };
  } catch (e) {
    if (!(e instanceof client.WWWAuthenticateChallengeError)) throw e;
    return { status: e.status, scheme: e.cause[0]?.scheme, error: e.cause[0]?.parameters.error };
  }
};
if (input.resource) {
  out.resource = await get(DPoP);
  if (DPoP) {
    // The same token in other hands: a client with a DPoP key of its own, and one that sends
    // it as a bearer token.
    out.resource_other_key = await get(client.getDPoPHandle(config, await client.randomDPoPKeyPair("ES256")));
    out.resource_as_bearer = await get(undefined);
  }
}
console.log(JSON.stringify(out));
