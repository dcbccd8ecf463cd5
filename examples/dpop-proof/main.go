// Command dpop-proof prints a DPoP proof (RFC 9449) for one request, for trying DPoP with curl:
//
//	openssl ecparam -name prime256v1 -genkey -noout -out dpop-key.pem
//	curl -H "DPoP: $(go run ./examples/dpop-proof -key dpop-key.pem POST http://localhost:8080/oauth2/token)" …
//
// A third argument, the access token, binds the proof to it (ath) for a call to an API.
// -thumbprint prints the key's RFC 7638 thumbprint instead: the cnf.jkt of the tokens bound
// to it. The key is a P-256 key in PEM (SEC 1 or PKCS #8), as openssl writes it. Go programs
// use package dpop directly; its Transport also handles server nonces, which this does not.
package main

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tokensmith/tokensmith/dpop"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "dpop-proof:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dpop-proof", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyFile := fs.String("key", "dpop-key.pem", "the private key (PEM), e.g. from: openssl ecparam -name prime256v1 -genkey -noout -out dpop-key.pem")
	thumbprint := fs.Bool("thumbprint", false, "print the key's thumbprint (cnf.jkt) instead of a proof")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: dpop-proof [-key FILE] METHOD URL [ACCESS_TOKEN]\n       dpop-proof [-key FILE] -thumbprint")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	signer, err := loadSigner(*keyFile)
	if err != nil {
		return err
	}
	if *thumbprint {
		_, err := fmt.Fprintln(stdout, signer.Thumbprint())
		return err
	}
	if fs.NArg() < 2 || fs.NArg() > 3 {
		fs.Usage()
		return errors.New("give the request's METHOD and URL, and the access token for a call to an API")
	}
	proof, err := signer.Proof(fs.Arg(0), fs.Arg(1), fs.Arg(2))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, proof)
	return err
}

// loadSigner reads a PEM private key: SEC 1 ("EC PRIVATE KEY", openssl ecparam) or PKCS #8.
func loadSigner(path string) (*dpop.Signer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for rest := raw; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return nil, fmt.Errorf("%s holds no PEM private key", path)
		}
		var key any
		switch block.Type {
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		default:
			continue // "EC PARAMETERS" and the like
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		s, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s: not a signing key", path)
		}
		return dpop.NewSigner(s)
	}
}
