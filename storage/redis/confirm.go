package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tokensmith/tokensmith/storage"
)

// Redis replicates asynchronously: a write the master answered is lost if the master dies
// before a replica has it. So every write an answer depends on goes through exec, which sends
// WAIT min_replicas replica_timeout right behind the write, in the same pipeline and so on the
// same connection (WAIT counts the replicas that have that connection's last write, and a Lua
// script cannot call WAIT itself). A write that too few replicas confirmed is reported as
// storage.ErrUnconfirmed with the write's own answers still readable, so each method decides,
// from what its write did, whether to undo it or leave it safe to retry. docs/durability.md
// has the table of those decisions.

// WaitObserver hears of every WAIT: how long the write and its WAIT took, and whether enough
// replicas confirmed it.
type WaitObserver func(took time.Duration, confirmed bool)

// ObserveWaits sends every WAIT to o (metrics.Metrics.ObserveWait).
func (s *Store) ObserveWaits(o WaitObserver) { s.waits.Store(&o) }

// step is part of a store call's pipeline: the commands queue adds, all in the slot of key
// (on a Cluster they go to that slot's master). A durable step is confirmed by WAIT; a plain
// one is not: it only reads, or writes what no answer depends on (a reuse pool's entry, a
// count given back). WAIT on a connection that wrote nothing new would wait for an earlier
// write of that connection, which the call does not depend on.
type step struct {
	key     string
	durable bool
	queue   func(p goredis.Pipeliner)
}

func durable(key string, queue func(p goredis.Pipeliner)) step { return step{key, true, queue} }
func plain(key string, queue func(p goredis.Pipeliner)) step   { return step{key, false, queue} }

// run is exec for one script whose write an answer depends on. A nil command comes with a
// transport failure; otherwise the error is nil or storage.ErrUnconfirmed, and the caller
// reads the script's answer to know whether it wrote anything that needs confirming.
func (s *Store) run(ctx context.Context, sc *goredis.Script, keys []string, args ...any) (*goredis.Cmd, error) {
	var cmd *goredis.Cmd
	err := s.exec(ctx, []*goredis.Script{sc}, durable(keys[0], func(p goredis.Pipeliner) { cmd = sc.EvalSha(ctx, p, keys, args...) }))
	if err != nil && !errors.Is(err, storage.ErrUnconfirmed) {
		return nil, err
	}
	if cerr := cmd.Err(); cerr != nil && !errors.Is(cerr, goredis.Nil) {
		return nil, fail(cerr)
	}
	return cmd, err
}

// exec sends the steps as one pipeline and, when min_replicas is set and a step writes, WAIT
// behind them. It answers a transport failure as storage.ErrUnavailable, and a write that too
// few replicas confirmed as storage.ErrUnconfirmed, after which the queued commands still hold
// their answers. Scripts answered NOSCRIPT are loaded and the pipeline sent again (pipelined).
func (s *Store) exec(ctx context.Context, scripts []*goredis.Script, steps ...step) error {
	write := false
	for _, st := range steps {
		write = write || st.durable
	}
	if s.minReplicas == 0 || !write {
		_, err := s.pipelined(ctx, scripts, func(p goredis.Pipeliner) {
			for _, st := range steps {
				st.queue(p)
			}
		})
		return err
	}
	if cc, ok := s.rdb.(*goredis.ClusterClient); ok {
		return s.execCluster(ctx, cc, scripts, steps)
	}
	var wait *goredis.Cmd
	start := time.Now()
	_, err := s.pipelined(ctx, scripts, func(p goredis.Pipeliner) {
		for _, st := range steps {
			st.queue(p)
		}
		wait = s.queueWait(ctx, p)
	})
	if err != nil {
		return err
	}
	return s.confirmed(wait, start)
}

// queueWait adds WAIT min_replicas replica_timeout to a pipeline.
func (s *Store) queueWait(ctx context.Context, p goredis.Pipeliner) *goredis.Cmd {
	return p.Do(ctx, "wait", s.minReplicas, s.replicaTimeout.Milliseconds())
}

// confirmed checks WAIT's answer and tells the observer.
func (s *Store) confirmed(wait *goredis.Cmd, start time.Time) error {
	n, err := wait.Int64()
	ok := err == nil && int(n) >= s.minReplicas
	if o := s.waits.Load(); o != nil {
		(*o)(time.Since(start), ok)
	}
	switch {
	case err != nil:
		return fail(err)
	case !ok:
		return fmt.Errorf("%w (%d of the %d replicas min_replicas asks for, within replica_timeout %v)", storage.ErrUnconfirmed, n, s.minReplicas, s.replicaTimeout)
	}
	return nil
}

// execCluster is exec on a Redis Cluster, where WAIT counts the replicas of the node it runs
// on: the steps are sent to their slots' masters directly, each node's part as one pipeline
// on one connection with WAIT behind it when it writes, all nodes at once. (Through the
// ClusterClient, a keyless WAIT would go to any master, or to all of them.) A node that
// answers MOVED no longer serves the slot: the slot map is reloaded and that node's part alone
// is sent once more, which is safe because a command answered MOVED did not run.
func (s *Store) execCluster(ctx context.Context, cc *goredis.ClusterClient, scripts []*goredis.Script, steps []step) error {
	var errs []error
	for attempt := 0; len(steps) > 0; attempt++ {
		var nodes []*goredis.Client
		parts := map[*goredis.Client][]step{}
		for _, st := range steps {
			n, err := cc.MasterForKey(ctx, st.key)
			if err != nil {
				return errors.Join(append(errs, fail(err))...)
			}
			if _, ok := parts[n]; !ok {
				nodes = append(nodes, n)
			}
			parts[n] = append(parts[n], st)
		}
		results := make([]error, len(nodes))
		var wg sync.WaitGroup
		for i, n := range nodes {
			wg.Go(func() { results[i] = s.execNode(ctx, n, scripts, parts[n]) })
		}
		wg.Wait()
		steps = nil
		for i, err := range results {
			if attempt == 0 && errors.Is(err, errMoved) {
				steps = append(steps, parts[nodes[i]]...)
			} else if err != nil {
				errs = append(errs, err)
			}
		}
		if len(steps) > 0 {
			cc.ReloadState(ctx)
		}
	}
	return errors.Join(errs...)
}

// errMoved marks a Cluster node's answer that the slot is served elsewhere.
var errMoved = errors.New("redis: slot moved")

// execNode is one Cluster node's part of execCluster.
func (s *Store) execNode(ctx context.Context, n *goredis.Client, scripts []*goredis.Script, steps []step) error {
	for attempt := 0; ; attempt++ {
		var wait *goredis.Cmd
		write := false
		start := time.Now()
		cmds, err := n.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, st := range steps {
				st.queue(p)
				write = write || st.durable
			}
			if write {
				wait = s.queueWait(ctx, p)
			}
			return nil
		})
		noScript := false
		for _, c := range cmds {
			if e := c.Err(); e != nil {
				switch msg := e.Error(); {
				case strings.HasPrefix(msg, "MOVED"), strings.HasPrefix(msg, "ASK"):
					return fmt.Errorf("%w: %w: %v", storage.ErrUnavailable, errMoved, e)
				case strings.HasPrefix(msg, "NOSCRIPT"):
					noScript = true
				}
			}
		}
		if noScript && attempt == 0 {
			for _, sc := range scripts {
				if err := sc.Load(ctx, n).Err(); err != nil {
					return fail(err)
				}
			}
			continue
		}
		if err != nil && !errors.Is(err, goredis.Nil) {
			return fail(err)
		}
		if wait == nil {
			return nil
		}
		return s.confirmed(wait, start)
	}
}

// undo runs fn, a write that takes back one no answer was given for, without waiting for
// replicas: losing an undo in a failover only keeps what the answer did not promise. It gets
// a context of its own, since the caller's may have run out while the write waited; its
// error is joined to unconfirmed, which the caller answers.
func (s *Store) undo(ctx context.Context, unconfirmed error, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultIOTimeout)
	defer cancel()
	if err := fn(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return errors.Join(unconfirmed, fmt.Errorf("undoing it: %w", err))
	}
	return unconfirmed
}

// readyLag is how long since a replica's last acknowledgement it still counts as connected:
// Redis's own measure of a good replica (min-replicas-max-lag), whose default is 10 seconds.
const readyLag = 10

// Ready reports whether the store can take and confirm writes: Redis answers, it accepts a
// write (a Redis that refuses writes — MISCONF after a failed save, OOM under maxmemory with
// noeviction, NOREPLICAS under min-replicas-to-write, READONLY on a demoted master — answers
// PING all the same), and with min_replicas set, its master (each master of a Cluster) has at
// least that many replicas online that acknowledged within readyLag seconds (INFO
// replication). /readyz fails otherwise, so a load balancer stops sending the requests this
// replica could only answer 503.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.Ping(ctx); err != nil {
		return err
	}
	check := func(ctx context.Context, c *goredis.Client, probe string) error {
		if err := c.Set(ctx, probe, "1", readyProbeTTL).Err(); err != nil {
			return fmt.Errorf("%w: %s refuses writes: %v", storage.ErrUnavailable, c.Options().Addr, err)
		}
		if s.minReplicas == 0 {
			return nil
		}
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return fail(err)
		}
		if n := goodReplicas(info); n < s.minReplicas {
			return fmt.Errorf("%w: %s has %d of the %d replicas min_replicas asks for", storage.ErrUnconfirmed, c.Options().Addr, n, s.minReplicas)
		}
		return nil
	}
	switch c := s.rdb.(type) {
	case *goredis.ClusterClient:
		// A master's own client can write only keys of its slots: each gets a probe key whose
		// hash tag falls there.
		return c.ForEachMaster(ctx, func(ctx context.Context, m *goredis.Client) error {
			probe, err := probeKeyOn(ctx, c, m)
			if err != nil {
				return err
			}
			return check(ctx, m, probe)
		})
	case *goredis.Client:
		return check(ctx, c, readyProbeKey)
	}
	return nil
}

// readyProbeKey is the key readiness writes to learn that Redis takes writes; it expires on its
// own, so a stopped replica leaves nothing behind.
const (
	readyProbeKey = "ts:ready"
	readyProbeTTL = 10 * time.Second
)

// probeKeyOn is a probe key that a Cluster stores on master m: its hash tag is the first of
// {0}, {1}, … whose slot m serves.
func probeKeyOn(ctx context.Context, c *goredis.ClusterClient, m *goredis.Client) (string, error) {
	for i := range 4096 {
		key := readyProbeKey + ":{" + strconv.Itoa(i) + "}"
		owner, err := c.MasterForKey(ctx, key)
		if err != nil {
			return "", fail(err)
		}
		if owner.Options().Addr == m.Options().Addr {
			return key, nil
		}
	}
	return "", fmt.Errorf("%w: no probe key falls on %s", storage.ErrUnavailable, m.Options().Addr)
}

// goodReplicas counts the lines "slaveN:ip=…,port=…,state=online,offset=…,lag=…" of INFO
// replication whose replica is online and acknowledged within readyLag seconds.
func goodReplicas(info string) int {
	n := 0
	for _, line := range strings.Split(info, "\n") {
		name, fields, ok := strings.Cut(strings.TrimSpace(line), ":")
		if _, err := strconv.Atoi(strings.TrimPrefix(name, "slave")); !ok || !strings.HasPrefix(name, "slave") || err != nil {
			continue
		}
		kv := map[string]string{}
		for _, f := range strings.Split(fields, ",") {
			k, v, _ := strings.Cut(f, "=")
			kv[k] = v
		}
		lag, err := strconv.Atoi(kv["lag"])
		if kv["state"] == "online" && err == nil && lag <= readyLag {
			n++
		}
	}
	return n
}
