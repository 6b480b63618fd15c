package redistest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// StartCluster starts a redis-server in cluster mode as a one-node cluster
// that serves all 16384 hash slots, so that a script touching keys of two
// slots fails with CROSSSLOT as it would on a real cluster. Connect with a
// redis.ClusterClient to Addr.
func StartCluster(t testing.TB) *Server {
	t.Helper()
	s := startWith(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), DisableIdentity: true})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatalf("redis cluster on %s: assign slots: %v", s.Addr(), err)
	}
	for {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return s
		}
		select {
		case <-ctx.Done():
			t.Fatalf("redis cluster on %s: not ok after 10s: %v %s", s.Addr(), err, info)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
