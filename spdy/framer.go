package spdy

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// Default read-side limits.
const (
	DefaultMaxHeaderBytes      = 1 << 20
	DefaultMaxHeaderFields     = 1000
	DefaultMaxControlFrameSize = 1 << 16
	DefaultMaxDataFrameSize    = 1 << 20
	DefaultMaxSettings         = 64

	// MinMaxControlFrameSize is the smallest control frame every endpoint
	// MUST accept (§2.2.1); a lower MaxControlFrameSize is raised to it.
	MinMaxControlFrameSize = 8192

	maxFrameLength = 1<<24 - 1

	// smallBuf is the most the framer keeps of its own payload and scratch
	// buffers while idle; larger ones come from bufPool.
	smallBuf = 4 << 10
)

// Framer reads and writes the frames of one SPDY session of one version.
//
// Reading (ReadFrame) and writing (the Write* methods) use separate state and
// may run concurrently with each other from two goroutines; neither may be
// called concurrently with itself. The inflate context of the read side and
// the deflate context of the write side are created at first use, so
// compression order is call order: call the Write methods in wire order.
type Framer struct {
	// Read-side limits, settable before the first ReadFrame. Zero means
	// the default.

	// MaxHeaderBytes caps the inflated size of one header block (default
	// 1 MiB). Exceeding it is a SessionError: inflating stopped mid-block.
	MaxHeaderBytes int
	// MaxHeaderFields caps the name/value pairs of one block (default
	// 1000). More is a StreamError PROTOCOL_ERROR; the block is still
	// inflated in full within MaxHeaderBytes.
	MaxHeaderFields int
	// MaxControlFrameSize caps a control frame's length (default 64 KiB,
	// at least 8192). A longer one is a SessionError; its header block is
	// not inflated.
	MaxControlFrameSize int
	// MaxDataFrameSize caps a DATA frame's payload (default 1 MiB). A
	// longer one is a SessionError.
	MaxDataFrameSize int
	// MaxSettings caps the entries of one SETTINGS frame (default 64;
	// SPDY/3 defines 8 ids). More is a SessionError.
	MaxSettings int

	version Version

	// Owned by the reader (ReadFrame):
	r      io.Reader
	rhdr   [8]byte
	rsmall [64]byte // payload buffer for small control frames; larger payloads borrow from bufPool
	lent   *[]byte  // payload buffer borrowed from bufPool, returned at the next ReadFrame
	data   DataFrame
	inf    *inflater
	hoff   []uint32 // per field: end of name, end of value in the block scratch
	lbuf   [4]byte
	rerr   error // sticky session error
	hused  int   // inflated bytes of the current block

	// Owned by the writer (the Write* methods):
	w    io.Writer
	whdr [8]byte
	wbuf []byte
	enc  *encoder
	werr error // sticky write error
}

// NewFramer returns a framer for one session of version v, writing to w and
// reading from r. It does no I/O. r should be buffered (a *bufio.Reader): the
// framer reads each frame header and payload with separate calls. w receives
// one Write per control frame and one or two per DATA frame.
func NewFramer(w io.Writer, r io.Reader, v Version) *Framer {
	if v != V2 && v != V3 {
		panic(fmt.Sprintf("spdy: NewFramer with unsupported version %d", v))
	}
	return &Framer{version: v, w: w, r: r}
}

// Version returns the framer's wire version.
func (f *Framer) Version() Version { return f.version }

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// bufPool holds *[]byte scratch and payload buffers larger than smallBuf.
var bufPool sync.Pool

func getBuf(n int) *[]byte {
	if p, _ := bufPool.Get().(*[]byte); p != nil && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	c := 2 * smallBuf
	for c < n {
		c *= 2
	}
	b := make([]byte, n, c)
	return &b
}

func putBuf(p *[]byte) { bufPool.Put(p) }

// ReadFrame reads the next frame. It returns io.EOF at a clean end between
// frames and io.ErrUnexpectedEOF within one; other errors of r are returned
// as they are. Protocol violations are a *StreamError or a *SessionError;
// after a *SessionError every later call returns it again.
//
// The returned *DataFrame and its Data are reused: they are valid only until
// the next ReadFrame. Other frames and their header strings are the caller's.
func (f *Framer) ReadFrame() (Frame, error) {
	if f.lent != nil {
		putBuf(f.lent)
		f.lent = nil
	}
	f.data.Data = nil
	if f.rerr != nil {
		return nil, f.rerr
	}
	if _, err := io.ReadFull(f.r, f.rhdr[:]); err != nil {
		return nil, err
	}
	h := &f.rhdr
	flags := Flags(h[4])
	length := int(h[5])<<16 | int(h[6])<<8 | int(h[7])
	if h[0]&0x80 == 0 {
		if max := orDefault(f.MaxDataFrameSize, DefaultMaxDataFrameSize); length > max {
			return nil, f.fail(&SessionError{Status: GoAwayProtocolError, Err: overLimit("MaxDataFrameSize", "DATA frame of %d bytes over the limit of %d", length, max)})
		}
		p, err := f.readPayload(length)
		if err != nil {
			return nil, err
		}
		f.data = DataFrame{StreamID: StreamID(binary.BigEndian.Uint32(h[:4])), Flags: flags, Data: p}
		return &f.data, nil
	}
	v := Version(binary.BigEndian.Uint16(h[:2]) & 0x7fff)
	t := FrameType(binary.BigEndian.Uint16(h[2:4]))
	max := max(orDefault(f.MaxControlFrameSize, DefaultMaxControlFrameSize), MinMaxControlFrameSize)
	if length > max {
		// The header block, if any, is not inflated: the session is over.
		return nil, f.fail(&SessionError{Status: GoAwayProtocolError, Err: overLimit("MaxControlFrameSize", "%v frame of %d bytes over the limit of %d", t, length, max)})
	}
	p, err := f.readPayload(length)
	if err != nil {
		return nil, err
	}
	if v != f.version {
		return nil, f.fail(sessionError("%v frame of version %d in a %v session", t, v, f.version))
	}
	fr, err := f.parseControl(t, flags, p)
	if se, ok := err.(*SessionError); ok {
		f.rerr = se
	}
	return fr, err
}

// LastFrameLength returns the length field of the frame header ReadFrame
// read last: the payload size after the 8-byte header.
func (f *Framer) LastFrameLength() int {
	h := &f.rhdr
	return int(h[5])<<16 | int(h[6])<<8 | int(h[7])
}

func (f *Framer) fail(err error) error {
	f.rerr = err
	return err
}

func (f *Framer) readPayload(n int) ([]byte, error) {
	if n <= len(f.rsmall) {
		p := f.rsmall[:n]
		if _, err := io.ReadFull(f.r, p); err != nil {
			return nil, noEOF(err)
		}
		return p, nil
	}
	// The buffer grows as the payload arrives, not to the length the
	// header announced: a peer that announces a large frame and stalls
	// pins no more than it sent.
	f.lent = getBuf(min(n, readStep))
	p := (*f.lent)[:0]
	for len(p) < n {
		step := min(n-len(p), max(readStep, len(p)))
		if len(p)+step > cap(p) {
			q := make([]byte, len(p), len(p)+step)
			copy(q, p)
			p = q
		}
		if _, err := io.ReadFull(f.r, p[len(p):len(p)+step]); err != nil {
			*f.lent = p
			return nil, noEOF(err)
		}
		p = p[:len(p)+step]
	}
	*f.lent = p
	return p, nil
}

// readStep is the first chunk in which a large payload is read.
const readStep = 16 << 10

// noEOF turns io.EOF inside a frame into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

const streamIDMask = 1<<31 - 1

func streamIDAt(p []byte) StreamID {
	return StreamID(binary.BigEndian.Uint32(p) & streamIDMask)
}

func (f *Framer) parseControl(t FrameType, flags Flags, p []byte) (Frame, error) {
	v := f.version
	badLength := func() error {
		return sessionError("%v frame with length %d", t, len(p))
	}
	// Offset of the header block in SYN_REPLY and HEADERS: SPDY/2 has 16
	// unused bits after the stream id.
	replyOff := 4
	if v == V2 {
		replyOff = 6
	}
	switch t {
	case TypeSynStream:
		if len(p) < 10 {
			return nil, badLength()
		}
		fr := &SynStreamFrame{
			Version:            v,
			StreamID:           streamIDAt(p),
			AssociatedStreamID: streamIDAt(p[4:]),
			Flags:              flags,
		}
		if v == V2 {
			fr.Priority = p[8] >> 6
		} else {
			fr.Priority = p[8] >> 5
			fr.Slot = p[9]
		}
		var err error
		if fr.Header, err = f.readHeaderBlock(fr.StreamID, p[10:]); err != nil {
			return nil, err
		}
		return fr, nil
	case TypeSynReply, TypeHeaders:
		if len(p) < replyOff {
			return nil, badLength()
		}
		id := streamIDAt(p)
		hdr, err := f.readHeaderBlock(id, p[replyOff:])
		if err != nil {
			return nil, err
		}
		if t == TypeSynReply {
			return &SynReplyFrame{Version: v, StreamID: id, Flags: flags, Header: hdr}, nil
		}
		return &HeadersFrame{Version: v, StreamID: id, Flags: flags, Header: hdr}, nil
	case TypeRstStream:
		if len(p) != 8 { // §2.6.3: length is always 8
			return nil, badLength()
		}
		return &RstStreamFrame{Version: v, StreamID: streamIDAt(p), Status: RstStatus(binary.BigEndian.Uint32(p[4:]))}, nil
	case TypeSettings:
		return f.parseSettings(flags, p)
	case TypeNoop:
		if v != V2 {
			break
		}
		if len(p) != 0 {
			return nil, badLength()
		}
		return &NoopFrame{Version: v}, nil
	case TypePing:
		if len(p) != 4 { // §2.6.5: length is always 4
			return nil, badLength()
		}
		return &PingFrame{Version: v, ID: binary.BigEndian.Uint32(p)}, nil
	case TypeGoAway:
		if v == V2 {
			// SPDY/2 §2.7.6 has no status, length 4; node's spdy-transport
			// sends SPDY/3's 8 bytes, so those are taken too, the status
			// ignored.
			if len(p) != 4 && len(p) != 8 {
				return nil, badLength()
			}
			return &GoAwayFrame{Version: v, LastGoodStreamID: streamIDAt(p)}, nil
		}
		if len(p) != 8 { // §2.6.6: length is always 8
			return nil, badLength()
		}
		return &GoAwayFrame{Version: v, LastGoodStreamID: streamIDAt(p), Status: GoAwayStatus(binary.BigEndian.Uint32(p[4:]))}, nil
	case TypeWindowUpdate:
		if v == V2 {
			break
		}
		if len(p) != 8 { // §2.6.8: length is always 8
			return nil, badLength()
		}
		id := streamIDAt(p)
		delta := binary.BigEndian.Uint32(p[4:]) & (1<<31 - 1)
		if delta == 0 { // §2.6.8: delta is 1..2^31-1
			if id == 0 {
				return nil, sessionError("WINDOW_UPDATE of 0 for the session")
			}
			return nil, streamError(id, ProtocolError, "WINDOW_UPDATE of 0")
		}
		return &WindowUpdateFrame{Version: v, StreamID: id, Delta: delta}, nil
	case TypeCredential:
		if v == V2 {
			break
		}
		return &CredentialFrame{Version: v}, nil
	}
	// §2.2.1: a control frame of an unknown type MUST be ignored.
	return &UnknownFrame{Version: v, Type: t, Flags: flags, Length: uint32(len(p))}, nil
}

func (f *Framer) parseSettings(flags Flags, p []byte) (Frame, error) {
	if len(p) < 4 {
		return nil, sessionError("SETTINGS frame with length %d", len(p))
	}
	n := binary.BigEndian.Uint32(p)
	if uint64(n)*8 != uint64(len(p)-4) { // checked before allocating
		return nil, sessionError("SETTINGS frame of %d entries with length %d", n, len(p))
	}
	if max := orDefault(f.MaxSettings, DefaultMaxSettings); int64(n) > int64(max) {
		return nil, &SessionError{Status: GoAwayProtocolError, Err: overLimit("MaxSettings", "SETTINGS frame of %d entries over the limit of %d", n, max)}
	}
	fr := &SettingsFrame{Version: f.version, Flags: flags, Settings: make([]Setting, 0, n)}
	var seen map[SettingID]bool
	if n > 16 {
		seen = make(map[SettingID]bool, n)
	}
	for e := p[4:]; len(e) >= 8; e = e[8:] {
		var s Setting
		if f.version == V2 {
			// SPDY/2 §2.7.4 as implemented everywhere: id:24 little-endian,
			// then flags:8.
			s.ID = SettingID(uint32(e[0]) | uint32(e[1])<<8 | uint32(e[2])<<16)
			s.Flags = e[3]
		} else {
			s.Flags = e[0]
			s.ID = SettingID(binary.BigEndian.Uint32(e) & 0xffffff)
		}
		s.Value = binary.BigEndian.Uint32(e[4:])
		// §2.6.4: of duplicate ids, the first is used.
		if seen != nil {
			if seen[s.ID] {
				continue
			}
			seen[s.ID] = true
		} else if hasSetting(fr.Settings, s.ID) {
			continue
		}
		fr.Settings = append(fr.Settings, s)
	}
	return fr, nil
}

func hasSetting(s []Setting, id SettingID) bool {
	for _, e := range s {
		if e.ID == id {
			return true
		}
	}
	return false
}
