package refgen

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatewaystack/gatewaystack/config"
)

// Marker values a probe sets one field to, to see which defaults derive
// from it.
const (
	markerInt      = 987654321
	markerDuration = 7*time.Hour + 7*time.Minute + 7*time.Second
)

// newProbe returns a Config with one element in every list of objects, one
// "pattern" entry in every map of objects and every optional object
// allocated, so that SetDefaults reaches every field.
func newProbe() *config.Config {
	c := new(config.Config)
	fill(reflect.ValueOf(c).Elem())
	return c
}

func fill(v reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		if !t.Field(i).IsExported() {
			continue
		}
		f := v.Field(i)
		ft := f.Type()
		switch {
		case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct:
			f.Set(reflect.New(ft.Elem()))
			fill(f.Elem())
		case ft.Kind() == reflect.Struct:
			fill(f)
		case ft.Kind() == reflect.Slice && isObject(ft.Elem()):
			e := newObject(ft.Elem())
			f.Set(reflect.Append(reflect.MakeSlice(ft, 0, 1), e))
		case ft.Kind() == reflect.Map && isObject(ft.Elem()):
			m := reflect.MakeMap(ft)
			m.SetMapIndex(reflect.ValueOf(mapKey).Convert(ft.Key()), newObject(ft.Elem()))
			f.Set(m)
		}
	}
}

// newObject returns a filled value of t, a struct or a pointer to one.
func newObject(t reflect.Type) reflect.Value {
	if t.Kind() == reflect.Pointer {
		p := reflect.New(t.Elem())
		fill(p.Elem())
		return p
	}
	v := reflect.New(t).Elem()
	fill(v)
	return v
}

// leaf is one field that holds a value rather than more fields.
type leaf struct {
	path string
	v    reflect.Value // settable
}

// walkLeaves calls fn for every leaf of v (a struct) in field order. Map
// elements are copied out, passed to fn, and stored back afterwards, so fn
// may set them.
func walkLeaves(v reflect.Value, prefix string, fn func(leaf)) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		y := yamlOf(sf)
		if y.skip {
			continue
		}
		f := v.Field(i)
		path := prefix
		if !y.inline {
			if path != "" {
				path += "."
			}
			path += y.name
		}
		ft := f.Type()
		switch {
		case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct:
			if !f.IsNil() {
				walkLeaves(f.Elem(), path, fn)
			}
		case ft.Kind() == reflect.Struct && ft != durationType:
			walkLeaves(f, path, fn)
		case ft.Kind() == reflect.Slice && isObject(ft.Elem()):
			if f.Len() > 0 {
				e := f.Index(0)
				if e.Kind() == reflect.Pointer {
					e = e.Elem()
				}
				walkLeaves(e, path+"[]", fn)
			}
		case ft.Kind() == reflect.Map && isObject(ft.Elem()):
			key := reflect.ValueOf(mapKey).Convert(ft.Key())
			e := f.MapIndex(key)
			if !e.IsValid() {
				continue
			}
			cp := reflect.New(ft.Elem()).Elem()
			cp.Set(e)
			inner := cp
			if inner.Kind() == reflect.Pointer {
				inner = inner.Elem()
			}
			walkLeaves(inner, path+`["`+mapKey+`"]`, fn)
			f.SetMapIndex(key, cp)
		default:
			fn(leaf{path: path, v: f})
		}
	}
}

// flatten renders every leaf of c.
func flatten(c *config.Config) map[string]string {
	out := map[string]string{}
	walkLeaves(reflect.ValueOf(c).Elem(), "", func(l leaf) { out[l.path] = render(l.v) })
	return out
}

// render writes a value the way it is written in YAML; "" for an unset
// string or pointer and an empty list or map.
func render(v reflect.Value) string {
	if v.Type() == durationType {
		return formatDuration(time.Duration(v.Int()))
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return ""
		}
		return render(v.Elem())
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case reflect.Slice:
		if v.Len() == 0 {
			return ""
		}
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = render(v.Index(i))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case reflect.Map:
		if v.Len() == 0 {
			return ""
		}
		keys := v.MapKeys()
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, render(k)+": "+render(v.MapIndex(k)))
		}
		sort.Strings(parts)
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v.Interface())
}

// formatDuration writes d as it is written in the configuration: 1m, not
// 1m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// setMarker sets a leaf to its marker value and returns the marker as
// rendered, or false for kinds that are not probed.
func setMarker(l leaf) (string, bool) {
	v := l.v
	if v.Type() == durationType {
		v.SetInt(int64(markerDuration))
		return formatDuration(markerDuration), true
	}
	if v.Kind() == reflect.Pointer {
		p := reflect.New(v.Type().Elem())
		v.Set(p)
		v = p.Elem()
	}
	switch v.Kind() {
	case reflect.String:
		m := "<" + l.path + ">"
		v.SetString(m)
		return m, true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.Type() == durationType {
			v.SetInt(int64(markerDuration))
			return formatDuration(markerDuration), true
		}
		v.SetInt(markerInt)
		return strconv.Itoa(markerInt), true
	case reflect.Bool:
		v.SetBool(true)
		return "true", false
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.String {
			m := "<" + l.path + ">"
			v.Set(reflect.Append(reflect.MakeSlice(v.Type(), 0, 1), reflect.ValueOf(m).Convert(v.Type().Elem())))
			return m, true
		}
	}
	return "", false
}

// derived is a default that SetDefaults takes from another field.
type derived struct {
	from  string // the field it comes from
	value string // rendered, with the marker replaced by <from>
}

// defaultsByPath returns, for every leaf path, the Markdown of its default:
// what SetDefaults fills into an empty configuration, and what it derives
// from other fields.
func defaultsByPath() map[string]string {
	base := newProbe()
	base.SetDefaults()
	plain := flatten(base)

	var paths []string
	walkLeaves(reflect.ValueOf(newProbe()).Elem(), "", func(l leaf) { paths = append(paths, l.path) })
	from := map[string][]derived{}
	for _, p := range paths {
		c := newProbe()
		var marker string
		var ok bool
		walkLeaves(reflect.ValueOf(c).Elem(), "", func(l leaf) {
			if l.path == p {
				marker, ok = setMarker(l)
			}
		})
		if !ok {
			continue
		}
		c.SetDefaults()
		for q, val := range flatten(c) {
			if q == p || val == plain[q] {
				continue
			}
			from[q] = append(from[q], derived{from: p, value: strings.ReplaceAll(val, marker, "<"+p+">")})
		}
	}

	out := make(map[string]string, len(plain))
	for p, v := range plain {
		cell := "—"
		if v != "" {
			cell = "`" + v + "`"
		}
		var extra []string
		for _, d := range from[p] {
			switch {
			case d.value == "<"+d.from+">":
				extra = append(extra, "same as `"+d.from+"`")
			case strings.Contains(d.value, "<"+d.from+">"):
				extra = append(extra, "`"+d.value+"`")
			default:
				extra = append(extra, "`"+d.value+"` when `"+d.from+"` is set")
			}
		}
		sort.Strings(extra)
		switch {
		case len(extra) == 0:
		case v == "":
			cell = strings.Join(extra, "; ")
		default:
			cell += " (" + strings.Join(extra, "; ") + ")"
		}
		out[p] = cell
	}
	return out
}
