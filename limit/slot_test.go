package limit

import (
	"context"
	"strconv"
	"testing"

	"github.com/gatewaystack/gatewaystack/internal/redistest"
	"github.com/redis/go-redis/v9"
)

func TestCRC16(t *testing.T) {
	t.Parallel()
	// The check value of CRC-16/XMODEM, the one Redis Cluster specifies.
	if got := crc16("123456789"); got != 0x31c3 {
		t.Errorf("crc16(123456789) = %#x, want 0x31c3", got)
	}
}

// Invariant: a charge's outcome key is in the charged key's hash slot, as
// Redis itself computes it, for any key (so a script touches one slot).
func TestSameSlotAgreesWithRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.StartCluster(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	keys := []string{"", "a", "foo", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}",
		"a}b", "{}x}", "x{", "{", "}", "{}", "ü{é}", "gs:rate:alice", "gs:{t}:budget:86400:acme", "\x00{\xff}"}
	for i := range 200 {
		keys = append(keys, "gatewaystack:rate:subject-"+strconv.Itoa(i))
	}
	for _, k := range keys {
		want, err := c.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := hashSlot(k); int64(got) != want {
			t.Errorf("hashSlot(%q) = %d, Redis says %d", k, got, want)
		}
		op := "{" + string(appendSlotTag(nil, k)) + "}gs:op:123"
		if got, err := c.ClusterKeySlot(ctx, op).Result(); err != nil || got != want {
			t.Errorf("slot of %q = %d, %v; want %d, the slot of %q", op, got, err, want, k)
		}
	}
}

// Invariant: every slot has a tag.
func TestSlotTagsCoverEverySlot(t *testing.T) {
	t.Parallel()
	for s, tag := range slotTags() {
		if got := hashSlot("{" + strconv.FormatUint(uint64(tag), 10) + "}"); got != s {
			t.Fatalf("slot %d has tag %d, which is in slot %d", s, tag, got)
		}
	}
}
