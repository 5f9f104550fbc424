package spdy

import (
	"encoding/binary"
)

// The Write methods assemble each control frame in a reused buffer and write
// it with a single Write; a DATA frame is written as its 8-byte header and
// then its payload. They do not retain the caller's slices. After a Write
// error of w, every later call returns that error: the peer's inflate context
// may have missed a header block. The Version field of a frame passed in is
// ignored; the framer's version is written.

// WriteData writes a DATA frame. data may be empty, e.g. to send FlagFin
// alone.
func (f *Framer) WriteData(id StreamID, flags Flags, data []byte) error {
	if f.werr != nil {
		return f.werr
	}
	if id > MaxStreamID {
		return ErrBadStreamID
	}
	if len(data) > maxFrameLength {
		return ErrFrameTooLarge
	}
	h := &f.whdr
	binary.BigEndian.PutUint32(h[:], uint32(id))
	h[4] = byte(flags)
	putLength(h, len(data))
	if _, err := f.w.Write(h[:]); err != nil {
		f.werr = err
		return err
	}
	if len(data) > 0 {
		if _, err := f.w.Write(data); err != nil {
			f.werr = err
			return err
		}
	}
	return nil
}

func putLength(h *[8]byte, n int) {
	h[5], h[6], h[7] = byte(n>>16), byte(n>>8), byte(n)
}

// startControl begins a control frame in f.wbuf; endControl sets its length
// and writes it.
func (f *Framer) startControl(t FrameType, flags Flags) []byte {
	return append(f.wbuf[:0], 0x80, byte(f.version), byte(t>>8), byte(t), byte(flags), 0, 0, 0)
}

func (f *Framer) endControl(b []byte) error {
	putLength((*[8]byte)(b), len(b)-8)
	_, err := f.w.Write(b)
	if cap(b) <= 1024 {
		f.wbuf = b[:0]
	} else {
		f.wbuf = nil
	}
	if err != nil {
		f.werr = err
	}
	return err
}

func checkIDs(ids ...StreamID) error {
	for _, id := range ids {
		if id > MaxStreamID {
			return ErrBadStreamID
		}
	}
	return nil
}

// WriteSynStream writes a SYN_STREAM frame. Priority is cut to 2 bits in
// SPDY/2 and 3 bits in SPDY/3; Slot is not sent in SPDY/2.
func (f *Framer) WriteSynStream(fr *SynStreamFrame) error {
	if f.werr != nil {
		return f.werr
	}
	if err := checkIDs(fr.StreamID, fr.AssociatedStreamID); err != nil {
		return err
	}
	b := f.startControl(TypeSynStream, fr.Flags)
	b = binary.BigEndian.AppendUint32(b, uint32(fr.StreamID))
	b = binary.BigEndian.AppendUint32(b, uint32(fr.AssociatedStreamID))
	if f.version == V2 {
		b = append(b, fr.Priority<<6, 0)
	} else {
		b = append(b, fr.Priority<<5, fr.Slot)
	}
	return f.endHeaderFrame(b, fr.Header)
}

// WriteSynReply writes a SYN_REPLY frame.
func (f *Framer) WriteSynReply(fr *SynReplyFrame) error {
	return f.writeReplyOrHeaders(TypeSynReply, fr.StreamID, fr.Flags, fr.Header)
}

// WriteHeaders writes a HEADERS frame.
func (f *Framer) WriteHeaders(fr *HeadersFrame) error {
	return f.writeReplyOrHeaders(TypeHeaders, fr.StreamID, fr.Flags, fr.Header)
}

func (f *Framer) writeReplyOrHeaders(t FrameType, id StreamID, flags Flags, hdr []HeaderField) error {
	if f.werr != nil {
		return f.werr
	}
	if err := checkIDs(id); err != nil {
		return err
	}
	b := f.startControl(t, flags)
	b = binary.BigEndian.AppendUint32(b, uint32(id))
	if f.version == V2 {
		b = append(b, 0, 0) // SPDY/2: 16 unused bits
	}
	return f.endHeaderFrame(b, hdr)
}

func (f *Framer) endHeaderFrame(b []byte, hdr []HeaderField) error {
	b, err := f.appendHeaderBlock(b, hdr)
	if err != nil {
		f.wbuf = b[:0]
		return err
	}
	return f.endControl(b)
}

// WriteRstStream writes a RST_STREAM frame.
func (f *Framer) WriteRstStream(id StreamID, s RstStatus) error {
	if f.werr != nil {
		return f.werr
	}
	if err := checkIDs(id); err != nil {
		return err
	}
	b := f.startControl(TypeRstStream, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(id))
	b = binary.BigEndian.AppendUint32(b, uint32(s))
	return f.endControl(b)
}

// WriteSettings writes a SETTINGS frame. Only the low 24 bits of each id
// are sent.
func (f *Framer) WriteSettings(flags Flags, s ...Setting) error {
	if f.werr != nil {
		return f.werr
	}
	if 4+8*len(s) > maxFrameLength {
		return ErrFrameTooLarge
	}
	b := f.startControl(TypeSettings, flags)
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	for _, e := range s {
		id := uint32(e.ID) & 0xffffff
		if f.version == V2 {
			b = append(b, byte(id), byte(id>>8), byte(id>>16), e.Flags)
		} else {
			b = binary.BigEndian.AppendUint32(b, uint32(e.Flags)<<24|id)
		}
		b = binary.BigEndian.AppendUint32(b, e.Value)
	}
	return f.endControl(b)
}

// WritePing writes a PING frame.
func (f *Framer) WritePing(id uint32) error {
	if f.werr != nil {
		return f.werr
	}
	b := f.startControl(TypePing, 0)
	b = binary.BigEndian.AppendUint32(b, id)
	return f.endControl(b)
}

// WriteGoAway writes a GOAWAY frame. SPDY/2 has no status field; s is not
// sent there.
func (f *Framer) WriteGoAway(last StreamID, s GoAwayStatus) error {
	if f.werr != nil {
		return f.werr
	}
	if err := checkIDs(last); err != nil {
		return err
	}
	b := f.startControl(TypeGoAway, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(last))
	if f.version != V2 {
		b = binary.BigEndian.AppendUint32(b, uint32(s))
	}
	return f.endControl(b)
}

// WriteWindowUpdate writes a WINDOW_UPDATE frame; SPDY/3 only. The delta
// must be 1..2^31-1 (§2.6.8); that is the caller's to ensure.
func (f *Framer) WriteWindowUpdate(id StreamID, delta uint32) error {
	if f.werr != nil {
		return f.werr
	}
	if f.version == V2 {
		return ErrWrongVersion
	}
	if err := checkIDs(id); err != nil {
		return err
	}
	b := f.startControl(TypeWindowUpdate, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(id))
	b = binary.BigEndian.AppendUint32(b, delta&(1<<31-1))
	return f.endControl(b)
}

// WriteNoop writes a NOOP frame; SPDY/2 only.
func (f *Framer) WriteNoop() error {
	if f.werr != nil {
		return f.werr
	}
	if f.version != V2 {
		return ErrWrongVersion
	}
	return f.endControl(f.startControl(TypeNoop, 0))
}
