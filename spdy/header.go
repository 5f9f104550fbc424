package spdy

import (
	"encoding/binary"
	"errors"
	"strings"
)

// readHeaderBlock inflates the compressed name/value block b of stream id
// and returns its fields. It inflates the whole block even when the result is
// a *StreamError, so that the shared context stays in step (§2.6.10.1).
//
// Counts and lengths from the wire are checked against MaxHeaderBytes and
// storage grows only with bytes really inflated.
//
// The block is read as far as its name/value data goes. Go's flate reader
// cannot be asked whether more output is pending without risking a read past
// the frame, which would break the context for good; so inflated bytes after
// the name/value data go unnoticed here and are read as the start of the
// next block, which then fails (typically as a *SessionError). Only the
// sending peer's own session is harmed.
func (f *Framer) readHeaderBlock(id StreamID, b []byte) ([]HeaderField, error) {
	if f.inf == nil {
		f.inf = newInflater(f.version)
	}
	z := f.inf
	if err := z.begin(b); err != nil {
		return nil, err
	}
	f.hused = 0
	scratch := getBuf(0)
	defer putBuf(scratch)
	hb := (*scratch)[:0]
	offs := f.hoff[:0]

	lsize := 4
	if f.version == V2 {
		lsize = 2 // SPDY/2 §2.7.10: 16-bit counts and lengths
	}
	maxBytes := orDefault(f.MaxHeaderBytes, DefaultMaxHeaderBytes)
	maxFields := orDefault(f.MaxHeaderFields, DefaultMaxHeaderFields)

	count, err := f.readNVLen(lsize, maxBytes)
	if err != nil {
		return nil, err
	}
	if uint64(count)*uint64(2*lsize) > uint64(maxBytes-f.hused) {
		return nil, z.fail(overLimit("MaxHeaderBytes", "header block count over the size limit"))
	}
	for i := 0; i < count; i++ {
		keep := i < maxFields
		for range 2 { // name, then value
			n, err := f.readNVLen(lsize, maxBytes)
			if err != nil {
				return nil, err
			}
			if n > maxBytes-f.hused {
				return nil, z.fail(overLimit("MaxHeaderBytes", "header block over the size limit"))
			}
			if hb, err = f.inflateInto(hb, n, keep); err != nil {
				return nil, err
			}
			if keep {
				offs = append(offs, uint32(len(hb)))
			}
		}
	}
	if err := z.end(); err != nil {
		return nil, err
	}
	*scratch = hb
	if cap(offs) <= 128 {
		f.hoff = offs
	} else {
		f.hoff = nil
	}
	if count > maxFields {
		return nil, &StreamError{StreamID: id, Status: ProtocolError, Err: overLimit("MaxHeaderFields", "header block of %d fields over the limit of %d", count, maxFields)}
	}

	s := string(hb)
	hdr := make([]HeaderField, len(offs)/2)
	start := uint32(0)
	for i := range hdr {
		ne, ve := offs[2*i], offs[2*i+1]
		hdr[i] = HeaderField{Name: s[start:ne], Value: s[ne:ve]}
		start = ve
	}
	if err := checkHeader(id, hdr); err != nil {
		return nil, err
	}
	return hdr, nil
}

// readNVLen reads a count or length of lsize bytes.
func (f *Framer) readNVLen(lsize, maxBytes int) (int, error) {
	if f.hused+lsize > maxBytes {
		return 0, f.inf.fail(overLimit("MaxHeaderBytes", "header block over the size limit"))
	}
	p := f.lbuf[:lsize]
	if err := f.inf.read(p); err != nil {
		return 0, err
	}
	f.hused += lsize
	if lsize == 2 {
		return int(binary.BigEndian.Uint16(p)), nil
	}
	n := binary.BigEndian.Uint32(p)
	if n > 1<<31-1 {
		return 0, f.inf.fail(errors.New("header block length over 2^31-1"))
	}
	return int(n), nil
}

// inflateInto inflates n bytes and appends them to hb if keep, or discards
// them. hb grows only as bytes arrive.
func (f *Framer) inflateInto(hb []byte, n int, keep bool) ([]byte, error) {
	for n > 0 {
		k := min(n, smallBuf)
		if cap(hb)-len(hb) < k {
			hb = append(hb[:cap(hb)], make([]byte, k)...)[:len(hb)]
		}
		if err := f.inf.read(hb[len(hb) : len(hb)+k]); err != nil {
			return hb, err
		}
		if keep {
			hb = hb[:len(hb)+k]
		}
		f.hused += k
		n -= k
	}
	return hb, nil
}

// checkHeader applies the name/value rules of §2.6.10 to a fully inflated
// block.
func checkHeader(id StreamID, hdr []HeaderField) error {
	for i, h := range hdr {
		if h.Name == "" { // §2.6.10: zero-length names are a PROTOCOL_ERROR
			return streamError(id, ProtocolError, "empty header name")
		}
		for j := 0; j < len(h.Name); j++ {
			if c := h.Name[j]; 'A' <= c && c <= 'Z' { // §2.6.10: names MUST be lowercase
				return streamError(id, ProtocolError, "header name %q not lowercase", h.Name)
			}
		}
		v := h.Value
		// §2.6.10: NUL separates values; none may be empty.
		if v != "" && (v[0] == 0 || v[len(v)-1] == 0 || strings.Contains(v, "\x00\x00")) {
			return streamError(id, ProtocolError, "header %q has an empty value between NULs", h.Name)
		}
		if len(hdr) <= 32 {
			for _, g := range hdr[:i] {
				if g.Name == h.Name {
					return duplicateName(id, h.Name)
				}
			}
		}
	}
	if len(hdr) > 32 {
		seen := make(map[string]struct{}, len(hdr))
		for _, h := range hdr {
			if _, dup := seen[h.Name]; dup {
				return duplicateName(id, h.Name)
			}
			seen[h.Name] = struct{}{}
		}
	}
	return nil
}

// duplicateName reports a name seen twice in one block, which §2.6.10
// forbids: duplicate headers MUST be joined with NUL instead.
func duplicateName(id StreamID, name string) error {
	return streamError(id, ProtocolError, "duplicate header name %q", name)
}

// maxRawHeaderBlock keeps a header block's compressed form, at most 9/8 of
// it plus a few bytes with fixed Huffman codes, within a frame's length.
const maxRawHeaderBlock = (maxFrameLength - 64) / 9 * 8

// CheckHeaderBlock reports whether hdr can be written as a header block
// in version v: ErrHeaderTooLarge when a count or length is over the
// version's field width (16 bits in SPDY/2), ErrFrameTooLarge when the
// block cannot fit in one frame. The Write methods fail the same way
// without writing anything; callers that queue header blocks for a writer
// check them first, so that nothing unsendable is queued.
func CheckHeaderBlock(v Version, hdr []HeaderField) error {
	_, err := rawHeaderBlockSize(v, hdr)
	return err
}

// rawHeaderBlockSize returns the uncompressed size of hdr's name/value
// block, or the limit it breaks.
func rawHeaderBlockSize(v Version, hdr []HeaderField) (int, error) {
	lsize, maxLen := 4, 1<<31-1
	if v == V2 {
		lsize, maxLen = 2, 1<<16-1
	}
	if len(hdr) > maxLen {
		return 0, ErrHeaderTooLarge
	}
	raw := lsize
	for _, h := range hdr {
		if len(h.Name) > maxLen || len(h.Value) > maxLen {
			return 0, ErrHeaderTooLarge
		}
		raw += 2*lsize + len(h.Name) + len(h.Value)
		if raw > maxRawHeaderBlock {
			return 0, ErrFrameTooLarge
		}
	}
	return raw, nil
}

// appendHeaderBlock compresses the name/value block of hdr and appends it to
// dst. It checks every limit before compressing, so an error leaves the
// deflate context untouched.
func (f *Framer) appendHeaderBlock(dst []byte, hdr []HeaderField) ([]byte, error) {
	raw, err := rawHeaderBlockSize(f.version, hdr)
	if err != nil {
		return dst, err
	}
	lsize := 4
	if f.version == V2 {
		lsize = 2
	}
	nv := getBuf(raw)
	defer putBuf(nv)
	b := (*nv)[:0]
	b = appendNVLen(b, lsize, len(hdr))
	for _, h := range hdr {
		b = appendNVLen(b, lsize, len(h.Name))
		b = append(b, h.Name...)
		b = appendNVLen(b, lsize, len(h.Value))
		b = append(b, h.Value...)
	}
	*nv = b
	if f.enc == nil {
		f.enc = newEncoder(f.version)
	}
	return f.enc.appendBlock(dst, b), nil
}

func appendNVLen(b []byte, lsize, n int) []byte {
	if lsize == 2 {
		return binary.BigEndian.AppendUint16(b, uint16(n))
	}
	return binary.BigEndian.AppendUint32(b, uint32(n))
}
