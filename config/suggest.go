package config

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// nearest returns the candidate closest to key — equal ignoring case, or
// within an edit distance of 2 (insertions, deletions, substitutions and
// swaps of neighbours, ignoring case) that is less than key's length — and
// whether there is one. Ties go to the earlier candidate.
func nearest(key string, candidates []string) (string, bool) {
	best, bestD := "", 3
	lk := strings.ToLower(key)
	for _, c := range candidates {
		d := editDistance(lk, strings.ToLower(c))
		if d < bestD && d < len([]rune(key)) {
			best, bestD = c, d
		}
	}
	return best, best != ""
}

// editDistance is the optimal-string-alignment distance between a and b
// (Levenshtein plus transposition of adjacent characters), in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		if a == b {
			return 0
		}
		return 64 // names are short; do not spend time on long keys
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// valueHint says what is wrong with a value that does not decode into type
// t, and how to write it.
func valueHint(n *yaml.Node, t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	got := describeNode(n)
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			return fmt.Sprintf("want a duration, got %s; write a Go duration like 30s, 1m or 1h30m", got)
		}
		return durationHint(n.Value)
	case t.Kind() == reflect.Struct:
		return fmt.Sprintf("want a mapping of settings (%s), got %s; write the settings indented under the key, or as {key: value, ...}", strings.Join(fieldNames(t), ", "), got)
	case t.Kind() == reflect.Map:
		return fmt.Sprintf("want a mapping of name: value, got %s; write one \"name: value\" per line indented under the key, or {name: value, ...}", got)
	case t.Kind() == reflect.Slice && isSection(t.Elem()):
		if n.Kind == yaml.MappingNode {
			return "want a list, got a single mapping; start each item with \"- \" (e.g. \"- name: notes\")"
		}
		return fmt.Sprintf("want a list of mappings, got %s; start each item with \"- \"", got)
	case t.Kind() == reflect.Slice:
		if n.Kind == yaml.ScalarNode {
			return fmt.Sprintf("want a list, got %s; write [%s] (or one \"- item\" line per item)", got, quoteFlow(n.Value))
		}
		return fmt.Sprintf("want a list of %s, got %s", kindName(t.Elem()), got)
	case n.Kind != yaml.ScalarNode:
		return fmt.Sprintf("want %s, got %s; write a single value (quote it if it contains ': ' or starts with '[' or '{')", kindName(t), got)
	case t.Kind() == reflect.Bool:
		return fmt.Sprintf("%q is not a boolean; write true or false", n.Value)
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		if b, ok := parseByteSize(n.Value); ok {
			return fmt.Sprintf("%q is not a whole number; write the number of bytes: %d", n.Value, b)
		}
		if _, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64); err == nil && n.ShortTag() != "!!str" {
			return fmt.Sprintf("%s is not a whole number this setting can hold; write a whole number in its range", n.Value)
		}
		return fmt.Sprintf("%q is not a whole number; write digits only, e.g. 64", n.Value)
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return fmt.Sprintf("%q is not a number; write e.g. 0.5", n.Value)
	}
	return fmt.Sprintf("%s does not fit here; write %s", got, kindName(t))
}

// describeNode names what a node holds, for messages.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	v := n.Value
	if len(v) > 60 {
		v = v[:57] + "..."
	}
	return strconv.Quote(v)
}

// kindName names what a value of type t is, for messages.
func kindName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration like 30s"
	case t.Kind() == reflect.String:
		return "a text value"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	case t.Kind() == reflect.Struct:
		return "a mapping of settings"
	}
	return "a " + t.Kind().String()
}

// quoteFlow quotes a scalar for a flow list when it needs it.
func quoteFlow(v string) string {
	if v == "" || strings.ContainsAny(v, ":#,[]{}&*!|>'\"%@` ") {
		return strconv.Quote(v)
	}
	return v
}

var (
	durationWords = regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-zµ]+)\s*$`)
	durationUnits = map[string]string{
		"ns": "ns", "nanosecond": "ns", "nanoseconds": "ns", "nsec": "ns",
		"us": "us", "µs": "us", "microsecond": "us", "microseconds": "us", "usec": "us",
		"ms": "ms", "millisecond": "ms", "milliseconds": "ms", "msec": "ms", "msecs": "ms", "millis": "ms",
		"s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
		"m": "m", "min": "m", "mins": "m", "minute": "m", "minutes": "m",
		"h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
	}
)

// durationHint explains how to write a duration, suggesting the Go
// spelling of what was meant when it is clear ("1 minute" → 1m, "2 days" →
// 48h, a bare 30 → 30s).
func durationHint(v string) string {
	const form = "write a Go duration: a number and a unit (ms, s, m, h), e.g. 30s, 1m or 1h30m"
	if _, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
		return fmt.Sprintf("%s has no unit; write a Go duration like %ss if it means seconds (units: ms, s, m, h)", v, strings.TrimSpace(v))
	}
	m := durationWords.FindStringSubmatch(v)
	if m == nil {
		return fmt.Sprintf("%q is not a duration; %s", v, form)
	}
	unit := strings.ToLower(m[2])
	switch unit {
	case "d", "day", "days":
		if n, err := strconv.ParseFloat(m[1], 64); err == nil {
			return fmt.Sprintf("%q is not a duration; write it in hours: %sh (Go durations have no day unit)", v, strconv.FormatFloat(n*24, 'f', -1, 64))
		}
	case "w", "week", "weeks":
		if n, err := strconv.ParseFloat(m[1], 64); err == nil {
			return fmt.Sprintf("%q is not a duration; write it in hours: %sh (Go durations have no week unit)", v, strconv.FormatFloat(n*24*7, 'f', -1, 64))
		}
	}
	if u, ok := durationUnits[unit]; ok {
		return fmt.Sprintf("%q is not a duration; write a Go duration like %s%s", v, m[1], u)
	}
	return fmt.Sprintf("%q is not a duration; %s", v, form)
}

var byteSize = regexp.MustCompile(`^\s*([0-9]+)\s*([KMGT]i?B?|[kmgt]i?b?|B)\s*$`)

// parseByteSize reads sizes such as 4MiB, 4 MB or 64k (binary multiples:
// what the byte settings' defaults use).
func parseByteSize(v string) (int64, bool) {
	m := byteSize.FindStringSubmatch(v)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, false
	}
	shift := map[byte]uint{'B': 0, 'K': 10, 'M': 20, 'G': 30, 'T': 40}[strings.ToUpper(m[2])[0]]
	if n > (1<<62)>>shift {
		return 0, false
	}
	return n << shift, true
}
