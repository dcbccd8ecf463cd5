package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os/exec"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tokensmith/tokensmith/keys"
	"github.com/tokensmith/tokensmith/storage/embedded"
)

// signature is the cost of signing one access token (nearly all of it the RS256 signature) with
// one signer, on one core: the unit the benchmark measures fresh issuance in.
type signature struct {
	Signer  string        `json:"signer"`
	Version string        `json:"signer_version"`
	CPU     time.Duration `json:"cpu_ns"`  // process CPU time per signature
	Wall    time.Duration `json:"wall_ns"` // elapsed time per signature, one goroutine
	// Loaded is the CPU time per signature with every core signing at once, as on a
	// saturated server: on machines whose cores are SMT siblings it is higher.
	Loaded  time.Duration `json:"cpu_all_cores_ns"`
	Samples int           `json:"samples,omitempty"`
}

// tokenClaims are a typical client_credentials access token's claims, as keys'
// BenchmarkSetSign signs them.
func tokenClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": "https://auth.example.com", "sub": "5ana4c7hmpdk", "aud": "https://api.example.com",
		"client_id": "5ana4c7hmpdk", "scope": "orders:read orders:write",
		"iat": now.Unix(), "exp": now.Add(3 * time.Hour).Unix(), "jti": "Xq3w0J9CTe3n",
	}
}

// measureSignature times this binary's signer (keys.SignerName) through what the server calls
// for every fresh token, keys.Set.Sign on a set opened as the server opens it, the way go test
// -bench does for keys' BenchmarkSetSign: one goroutine, signing in a loop. The RSA signature
// is nearly all of it: encoding the claims and the token takes microseconds, the signature
// hundreds of them. Five rounds of about 0.3 s; the median round counts, so a burst of load
// from elsewhere on the machine skews one round, not the figure.
func measureSignature() (signature, error) {
	store, err := embedded.OpenMemory()
	if err != nil {
		return signature{}, err
	}
	defer store.Close()
	m, _, err := keys.Open(context.Background(), store, keys.Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		return signature{}, err
	}
	defer m.Set.Close()
	claims := tokenClaims(time.Now())
	signOne := func() error {
		_, err := m.Set.Sign(keys.RS256, claims)
		return err
	}
	// One core: the goroutine signs while nothing else runs.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	sign := func(n int) error {
		for range n {
			if err := signOne(); err != nil {
				return err
			}
		}
		return nil
	}
	if err := sign(20); err != nil {
		return signature{}, err
	}
	// Size a round from a short trial.
	t := time.Now()
	if err := sign(20); err != nil {
		return signature{}, err
	}
	n := max(int(300*time.Millisecond/(time.Since(t)/20)), 20)
	var cpus, walls []time.Duration
	for range 5 {
		c0, w0 := processCPU(), time.Now()
		if err := sign(n); err != nil {
			return signature{}, err
		}
		cpus = append(cpus, (processCPU()-c0)/time.Duration(n))
		walls = append(walls, time.Since(w0)/time.Duration(n))
	}
	slices.Sort(cpus)
	slices.Sort(walls)
	loaded, err := measureLoaded(signOne, n)
	if err != nil {
		return signature{}, err
	}
	return signature{Signer: keys.SignerName, Version: keys.SignerVersion(), CPU: cpus[2], Wall: walls[2], Loaded: loaded}, nil
}

// measureLoaded times signatures made by GOMAXPROCS goroutines at once, each calling signOne:
// the median of three rounds of n signatures each.
func measureLoaded(signOne func() error, n int) (time.Duration, error) {
	procs := runtime.GOMAXPROCS(0)
	var rounds []time.Duration
	for range 3 {
		c0 := processCPU()
		errs := make(chan error, procs)
		for range procs {
			go func() {
				for range n {
					if err := signOne(); err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}()
		}
		for range procs {
			if err := <-errs; err != nil {
				return 0, err
			}
		}
		rounds = append(rounds, (processCPU()-c0)/time.Duration(n*procs))
	}
	slices.Sort(rounds)
	return rounds[1], nil
}

// processCPU is this process's user + system time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measureSignatureIn runs bin (this program built with other tags) to time its signer.
func measureSignatureIn(bin string) (signature, error) {
	out, err := exec.Command(bin, "-measure-signature").Output()
	if err != nil {
		return signature{}, fmt.Errorf("%s -measure-signature: %w", bin, err)
	}
	var s signature
	return s, json.Unmarshal(out, &s)
}

// medianSignature is the sample with the median CPU time; Samples says how many there were.
func medianSignature(all []signature) signature {
	s := slices.Clone(all)
	slices.SortFunc(s, func(a, b signature) int { return int(a.CPU - b.CPU) })
	m := s[len(s)/2]
	m.Samples = len(s)
	return m
}
