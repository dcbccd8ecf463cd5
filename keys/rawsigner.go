package keys

import "crypto/rsa"

// RawSigner makes bare RS256 signatures with this build's signer (SignerName), outside any key
// set. It exists so that the load benchmark (bench/) can time one signature, the cost the benchmark
// measures fresh issuance against, with exactly the implementation the server uses.
type RawSigner struct{ s rsaSigner }

// NewRawSigner prepares priv for signing the way a loaded key is prepared. Close it when done:
// the OpenSSL build holds the key outside the Go heap.
func NewRawSigner(priv *rsa.PrivateKey) (*RawSigner, error) {
	priv.Precompute()
	s, err := newSigner(priv)
	if err != nil {
		return nil, err
	}
	return &RawSigner{s: s}, nil
}

// SignRS256 returns the RSASSA-PKCS1-v1_5 SHA-256 signature of message (a JWS signing input;
// the signer hashes it).
func (r *RawSigner) SignRS256(message []byte) ([]byte, error) { return r.s.signRS256(message) }

// Close releases the signer; SignRS256 fails afterwards.
func (r *RawSigner) Close() { r.s.close() }
