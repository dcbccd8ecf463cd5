package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Dev certificate files in the data directory.
const (
	DevCertFile = "dev-cert.pem"
	DevKeyFile  = "dev-key.pem"
)

// devNames are the names the dev certificate is valid for: every way to say "this machine".
var devNames = []string{"localhost"}
var devIPs = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}

// devLifetime is how long a dev certificate is valid; one that has less than devRenewBefore
// left is replaced at start, so a machine in daily use never meets an expired one.
const (
	devLifetime    = 365 * 24 * time.Hour
	devRenewBefore = 30 * 24 * time.Hour
)

// EnsureDev returns the paths of a self-signed certificate for localhost, 127.0.0.1 and ::1
// in dir, creating it (key mode 0600) if it is missing, unreadable or close to expiry.
// Keeping it across restarts keeps working whatever a developer already told to trust it.
// created reports whether a new one was made.
func EnsureDev(dir string, now time.Time) (certFile, keyFile string, created bool, err error) {
	certFile, keyFile = filepath.Join(dir, DevCertFile), filepath.Join(dir, DevKeyFile)
	if c, err := load(certFile, keyFile); err == nil && usableDev(c.Leaf, now) {
		return certFile, keyFile, false, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", false, err
	}
	certPEM, keyPEM, err := newDev(now)
	if err != nil {
		return "", "", false, err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", false, err
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return "", "", false, err
	}
	return certFile, keyFile, true, nil
}

func usableDev(leaf *x509.Certificate, now time.Time) bool {
	if now.Add(devRenewBefore).After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return false
	}
	for _, n := range devNames {
		if !slices.Contains(leaf.DNSNames, n) {
			return false
		}
	}
	return len(leaf.IPAddresses) == len(devIPs)
}

// newDev makes the certificate. It is its own issuer and marked as a CA, so that every
// client that is told to trust it (curl --cacert, Go's RootCAs, Python's verify=, Node's
// NODE_EXTRA_CA_CERTS) accepts it as the anchor of the chain it is the whole of.
func newDev(now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"Tokensmith development certificate (" + host + ")"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(devLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		DNSNames:              devNames,
		IPAddresses:           devIPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("dev certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), nil
}
