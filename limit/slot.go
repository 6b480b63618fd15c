package limit

import (
	"strconv"
	"strings"
	"sync"
)

// Redis Cluster keeps a key in hash slot CRC16(k) mod 16384, where k is the
// key's hash tag — the text between its first '{' and the first '}' after
// that, when it is not empty — or else the whole key. A script may touch
// keys of one slot only, so the key that remembers a charge's outcome (see
// Redis) is tagged with a short string that hashes to the charged key's
// slot, whatever the charged key looks like.

// clusterSlots is the number of Redis Cluster hash slots.
const clusterSlots = 16384

// crc16Table drives crc16 (CRC-16/XMODEM: polynomial 0x1021, initial 0).
var crc16Table = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// crc16 is the checksum Redis Cluster hashes keys with.
func crc16[T string | []byte](s T) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^s[i]]
	}
	return crc
}

// hashSlot is the Redis Cluster hash slot of key.
func hashSlot(key string) int {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if n := strings.IndexByte(key[open+1:], '}'); n > 0 {
			key = key[open+1 : open+1+n]
		}
	}
	return int(crc16(key) % clusterSlots)
}

// slotTags returns, for every hash slot, the first number (0, 1, …) whose
// decimal text hashes to it: "{" + text + "}" puts a key in that slot. The
// table is built once, on first use (about 110,000 checksums).
var slotTags = sync.OnceValue(func() *[clusterSlots]uint32 {
	var t [clusterSlots]uint32
	var seen [clusterSlots]bool
	var buf [10]byte
	for n, left := uint32(0), clusterSlots; left > 0; n++ {
		if i := crc16(strconv.AppendUint(buf[:0], uint64(n), 10)) % clusterSlots; !seen[i] {
			t[i], seen[i] = n, true
			left--
		}
	}
	return &t
})

// appendSlotTag appends to b a tag that puts "{" + tag + "}…" in key's
// hash slot.
func appendSlotTag(b []byte, key string) []byte {
	return strconv.AppendUint(b, uint64(slotTags()[hashSlot(key)]), 10)
}
