package redis

import "context"

// EnsureServerSecret implements storage.Storage, in one round trip. An unconfirmed write is
// left in place: retried, it finds the secret there and answers it.
func (s *Store) EnsureServerSecret(ctx context.Context, name, candidate string) (string, error) {
	cmd, err := s.run(ctx, ensureSecret, []string{serverSecretKey(name)}, candidate)
	if cmd == nil || err != nil {
		return "", err
	}
	return cmd.Text()
}

func serverSecretKey(name string) string { return "ts:{secret:" + name + "}" }
