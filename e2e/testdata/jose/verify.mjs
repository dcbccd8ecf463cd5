// Verifies Tokensmith access tokens with the jose library (npm), as a Node.js resource server
// would: the JWKS fetched from the server, the key chosen by kid, the algorithm pinned.
//
// Input on stdin: {"jwks": URL, "issuer": URL, "tokens": [{"alg": "ES256", "token": "…"}, …]}.
// For each token it checks that jwtVerify accepts it with its own algorithm (typ at+jwt, the
// issuer) and refuses it when only the other algorithms are allowed, then prints one JSON line
// per token and exits 1 if any check failed.
import { createRemoteJWKSet, jwtVerify, decodeProtectedHeader } from "jose";

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const jwks = createRemoteJWKSet(new URL(input.jwks));
const all = ["RS256", "PS256", "ES256", "EdDSA"];

let failed = false;
for (const { alg, token } of input.tokens) {
  const result = { alg, header: decodeProtectedHeader(token) };
  try {
    const { payload, protectedHeader } = await jwtVerify(token, jwks, {
      algorithms: [alg],
      issuer: input.issuer,
      typ: "at+jwt",
    });
    result.verified = protectedHeader.alg === alg && typeof payload.client_id === "string";
    result.client_id = payload.client_id;
  } catch (e) {
    result.verified = false;
    result.error = `${e.code}: ${e.message}`;
  }
  try {
    await jwtVerify(token, jwks, { algorithms: all.filter((a) => a !== alg), issuer: input.issuer });
    result.otherAlgorithmsRefuse = false;
  } catch (e) {
    result.otherAlgorithmsRefuse = e.code === "ERR_JOSE_ALG_NOT_ALLOWED";
  }
  failed ||= !result.verified || !result.otherAlgorithmsRefuse;
  console.log(JSON.stringify(result));
}
process.exit(failed ? 1 : 0);
