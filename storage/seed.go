package storage

import "context"

// Seeder is implemented by backends that can be filled fast: the scale benchmark weighs a
// store of a million clients and refresh tokens, which CreateClient and CreateRefreshToken
// (one atomic step, one durable commit each) would take an hour to write. Records are stored
// in the layout and encoding those methods use, so the store reads them as if they had been
// created one by one; what is left out is the per-record atomicity (a batch is written in
// large transactions or pipelines) and the deletion note CreateClient reads. It is not a
// restore path: tokensmith import is.
type Seeder interface {
	// SeedClients stores client(i) for every i in [0, n) as a client whose id was never used
	// before (NotBefore zero); an id that is taken, or was deleted, is ErrAlreadyExists, and
	// the batches before it stay written.
	SeedClients(ctx context.Context, n int, client func(i int) Client) error
	// SeedRefreshTokens stores token(i) for every i in [0, n) as the first refresh token of a
	// new family, as CreateRefreshToken does; a family already held is ErrAlreadyExists.
	SeedRefreshTokens(ctx context.Context, n int, token func(i int) RefreshToken) error
}

// SeedBatch is how many records a Seeder writes in one transaction or pipeline: large enough
// that a commit's fsync or a round trip is shared by many records, small enough that a batch
// holds the store for milliseconds.
const SeedBatch = 5000
