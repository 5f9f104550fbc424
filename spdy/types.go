package spdy

import (
	"errors"
	"fmt"
	"strconv"
)

// Version is the protocol version carried in every control frame header.
type Version uint16

// Wire versions. SPDY/3.1 uses V3.
const (
	V2 Version = 2
	V3 Version = 3
)

func (v Version) String() string {
	switch v {
	case V2:
		return "SPDY/2"
	case V3:
		return "SPDY/3"
	}
	return "UNKNOWN_VERSION_" + strconv.Itoa(int(v))
}

// FrameType is the type field of a control frame header.
type FrameType uint16

// Control frame types (§2.6).
const (
	TypeSynStream    FrameType = 1
	TypeSynReply     FrameType = 2
	TypeRstStream    FrameType = 3
	TypeSettings     FrameType = 4
	TypeNoop         FrameType = 5 // SPDY/2 only
	TypePing         FrameType = 6
	TypeGoAway       FrameType = 7
	TypeHeaders      FrameType = 8
	TypeWindowUpdate FrameType = 9  // SPDY/3 only
	TypeCredential   FrameType = 10 // SPDY/3 only
)

var frameTypeNames = [...]string{
	TypeSynStream:    "SYN_STREAM",
	TypeSynReply:     "SYN_REPLY",
	TypeRstStream:    "RST_STREAM",
	TypeSettings:     "SETTINGS",
	TypeNoop:         "NOOP",
	TypePing:         "PING",
	TypeGoAway:       "GOAWAY",
	TypeHeaders:      "HEADERS",
	TypeWindowUpdate: "WINDOW_UPDATE",
	TypeCredential:   "CREDENTIAL",
}

func (t FrameType) String() string {
	if int(t) < len(frameTypeNames) && frameTypeNames[t] != "" {
		return frameTypeNames[t]
	}
	return "UNKNOWN_FRAME_TYPE_" + strconv.Itoa(int(t))
}

// Flags is the flags byte of a frame header.
type Flags uint8

// Frame flags (§2.2, §2.6).
const (
	FlagFin            Flags = 0x01 // DATA, SYN_STREAM, SYN_REPLY, HEADERS
	FlagUnidirectional Flags = 0x02 // SYN_STREAM
	FlagClearSettings  Flags = 0x01 // SETTINGS
)

// Per-setting flags of a SETTINGS entry (§2.6.4).
const (
	SettingFlagPersistValue uint8 = 0x01
	SettingFlagPersisted    uint8 = 0x02
)

// StreamID is a 31-bit stream identifier. Clients use odd ids, servers even
// ones; 0 names the session in WINDOW_UPDATE (SPDY/3.1).
type StreamID uint32

// MaxStreamID is the largest stream id that fits in 31 bits.
const MaxStreamID StreamID = 1<<31 - 1

// RstStatus is the status code of a RST_STREAM frame (§2.6.3).
type RstStatus uint32

// RST_STREAM status codes. 8 and above exist in SPDY/3 only.
const (
	ProtocolError       RstStatus = 1
	InvalidStream       RstStatus = 2
	RefusedStream       RstStatus = 3
	UnsupportedVersion  RstStatus = 4
	Cancel              RstStatus = 5
	InternalError       RstStatus = 6
	FlowControlError    RstStatus = 7
	StreamInUse         RstStatus = 8
	StreamAlreadyClosed RstStatus = 9
	InvalidCredentials  RstStatus = 10
	FrameTooLarge       RstStatus = 11
)

var rstStatusNames = [...]string{
	ProtocolError:       "PROTOCOL_ERROR",
	InvalidStream:       "INVALID_STREAM",
	RefusedStream:       "REFUSED_STREAM",
	UnsupportedVersion:  "UNSUPPORTED_VERSION",
	Cancel:              "CANCEL",
	InternalError:       "INTERNAL_ERROR",
	FlowControlError:    "FLOW_CONTROL_ERROR",
	StreamInUse:         "STREAM_IN_USE",
	StreamAlreadyClosed: "STREAM_ALREADY_CLOSED",
	InvalidCredentials:  "INVALID_CREDENTIALS",
	FrameTooLarge:       "FRAME_TOO_LARGE",
}

func (s RstStatus) String() string {
	if int64(s) < int64(len(rstStatusNames)) && rstStatusNames[s] != "" {
		return rstStatusNames[s]
	}
	return "UNKNOWN_RST_STATUS_" + strconv.FormatUint(uint64(s), 10)
}

// GoAwayStatus is the status code of a SPDY/3 GOAWAY frame (§2.6.6).
// SPDY/2 GOAWAY frames carry no status.
type GoAwayStatus uint32

// GOAWAY status codes.
const (
	GoAwayOK            GoAwayStatus = 0
	GoAwayProtocolError GoAwayStatus = 1
	GoAwayInternalError GoAwayStatus = 2
)

func (s GoAwayStatus) String() string {
	switch s {
	case GoAwayOK:
		return "OK"
	case GoAwayProtocolError:
		return "PROTOCOL_ERROR"
	case GoAwayInternalError:
		return "INTERNAL_ERROR"
	}
	return "UNKNOWN_GOAWAY_STATUS_" + strconv.FormatUint(uint64(s), 10)
}

// SettingID is the 24-bit id of a SETTINGS entry (§2.6.4).
type SettingID uint32

// Setting ids. SettingClientCertificateVectorSize exists in SPDY/3 only.
const (
	SettingUploadBandwidth             SettingID = 1
	SettingDownloadBandwidth           SettingID = 2
	SettingRoundTripTime               SettingID = 3
	SettingMaxConcurrentStreams        SettingID = 4
	SettingCurrentCwnd                 SettingID = 5
	SettingDownloadRetransRate         SettingID = 6
	SettingInitialWindowSize           SettingID = 7
	SettingClientCertificateVectorSize SettingID = 8
)

var settingNames = [...]string{
	SettingUploadBandwidth:             "UPLOAD_BANDWIDTH",
	SettingDownloadBandwidth:           "DOWNLOAD_BANDWIDTH",
	SettingRoundTripTime:               "ROUND_TRIP_TIME",
	SettingMaxConcurrentStreams:        "MAX_CONCURRENT_STREAMS",
	SettingCurrentCwnd:                 "CURRENT_CWND",
	SettingDownloadRetransRate:         "DOWNLOAD_RETRANS_RATE",
	SettingInitialWindowSize:           "INITIAL_WINDOW_SIZE",
	SettingClientCertificateVectorSize: "CLIENT_CERTIFICATE_VECTOR_SIZE",
}

func (id SettingID) String() string {
	if int64(id) < int64(len(settingNames)) && settingNames[id] != "" {
		return settingNames[id]
	}
	return "UNKNOWN_SETTING_" + strconv.FormatUint(uint64(id), 10)
}

// Setting is one entry of a SETTINGS frame. Only the low 24 bits of ID are
// sent.
type Setting struct {
	ID    SettingID
	Flags uint8
	Value uint32
}

// HeaderField is one name/value pair of a header block. Value may hold several
// values joined by single NUL bytes, exactly as on the wire.
type HeaderField struct {
	Name, Value string
}

// Frame is one of the *XxxFrame types of this package.
type Frame interface {
	isFrame()
}

// DataFrame is a DATA frame. ReadFrame reuses one DataFrame and its buffer:
// the frame and Data are valid only until the next ReadFrame.
type DataFrame struct {
	StreamID StreamID
	Flags    Flags
	Data     []byte
}

// SynStreamFrame opens a stream. Priority is 0..3 in SPDY/2 and 0..7 in
// SPDY/3, 0 being the highest in practice for both. Slot is always 0 in
// SPDY/2.
type SynStreamFrame struct {
	Version            Version
	StreamID           StreamID
	AssociatedStreamID StreamID
	Priority           uint8
	Slot               uint8
	Flags              Flags
	Header             []HeaderField
}

// SynReplyFrame answers a SYN_STREAM.
type SynReplyFrame struct {
	Version  Version
	StreamID StreamID
	Flags    Flags
	Header   []HeaderField
}

// RstStreamFrame ends a stream abnormally.
type RstStreamFrame struct {
	Version  Version
	StreamID StreamID
	Status   RstStatus
}

// SettingsFrame carries settings. When read, duplicate ids have been
// removed, keeping the first (§2.6.4).
type SettingsFrame struct {
	Version  Version
	Flags    Flags
	Settings []Setting
}

// NoopFrame is the SPDY/2 NOOP frame.
type NoopFrame struct {
	Version Version
}

// PingFrame is a PING frame.
type PingFrame struct {
	Version Version
	ID      uint32
}

// GoAwayFrame announces the end of a session. SPDY/2 has no status: Status is
// always GoAwayOK when read, and it is not written.
type GoAwayFrame struct {
	Version          Version
	LastGoodStreamID StreamID
	Status           GoAwayStatus
}

// HeadersFrame carries additional headers of a stream.
type HeadersFrame struct {
	Version  Version
	StreamID StreamID
	Flags    Flags
	Header   []HeaderField
}

// WindowUpdateFrame is a SPDY/3 WINDOW_UPDATE; StreamID 0 is the SPDY/3.1
// session window. Delta has its reserved high bit cleared.
type WindowUpdateFrame struct {
	Version  Version
	StreamID StreamID
	Delta    uint32
}

// CredentialFrame is a SPDY/3 CREDENTIAL frame; its payload is read and
// ignored (the frame is deprecated in SPDY/3.1).
type CredentialFrame struct {
	Version Version
}

// UnknownFrame is a control frame of a type the version does not define.
// Its payload has been skipped. Receivers MUST ignore it (§2.2.1).
type UnknownFrame struct {
	Version Version
	Type    FrameType
	Flags   Flags
	Length  uint32
}

func (*DataFrame) isFrame()         {}
func (*SynStreamFrame) isFrame()    {}
func (*SynReplyFrame) isFrame()     {}
func (*RstStreamFrame) isFrame()    {}
func (*SettingsFrame) isFrame()     {}
func (*NoopFrame) isFrame()         {}
func (*PingFrame) isFrame()         {}
func (*GoAwayFrame) isFrame()       {}
func (*HeadersFrame) isFrame()      {}
func (*WindowUpdateFrame) isFrame() {}
func (*CredentialFrame) isFrame()   {}
func (*UnknownFrame) isFrame()      {}

// StreamError is a fault confined to one stream: answer it with RST_STREAM
// carrying Status, and go on with the session. When ReadFrame returns it, any
// header block of the frame was fully inflated, so the shared compression
// state is intact. ReadFrame returns it as a *StreamError.
type StreamError struct {
	StreamID StreamID
	Status   RstStatus
	Err      error
}

func (e *StreamError) Error() string {
	return fmt.Sprintf("spdy: stream %d: %v (%v)", e.StreamID, e.Err, e.Status)
}

func (e *StreamError) Unwrap() error { return e.Err }

// SessionError is a fault of the whole session: answer it with GOAWAY
// carrying Status, then close the connection. The read side of the Framer is
// unusable afterwards. ReadFrame returns it as a *SessionError.
type SessionError struct {
	Status GoAwayStatus
	Err    error
}

func (e *SessionError) Error() string {
	return fmt.Sprintf("spdy: session: %v (%v)", e.Err, e.Status)
}

func (e *SessionError) Unwrap() error { return e.Err }

// LimitError is the cause (the Err) of a StreamError or SessionError for
// a frame over one of the Framer's limits. Limit names the Framer field:
// "MaxHeaderBytes", "MaxHeaderFields", "MaxControlFrameSize",
// "MaxDataFrameSize" or "MaxSettings". Find it with errors.As.
type LimitError struct {
	Limit string
	Err   error
}

func (e *LimitError) Error() string { return e.Err.Error() }
func (e *LimitError) Unwrap() error { return e.Err }

// overLimit returns the error of a frame over the Framer's limit field.
func overLimit(field, format string, args ...any) error {
	return &LimitError{Limit: field, Err: fmt.Errorf(format, args...)}
}

func streamError(id StreamID, s RstStatus, format string, args ...any) error {
	return &StreamError{StreamID: id, Status: s, Err: fmt.Errorf(format, args...)}
}

func sessionError(format string, args ...any) error {
	return &SessionError{Status: GoAwayProtocolError, Err: fmt.Errorf(format, args...)}
}

// Errors of the write methods. They report misuse by the caller and never
// reach the wire.
var (
	ErrWrongVersion   = errors.New("spdy: frame type not defined in this version")
	ErrFrameTooLarge  = errors.New("spdy: frame payload over 16 MiB - 1")
	ErrHeaderTooLarge = errors.New("spdy: header block field over the version's length limit")
	ErrBadStreamID    = errors.New("spdy: stream id over 31 bits")
)

// IsControlFrameStart reports whether b (at least 2 bytes) looks like the
// start of a SPDY control frame: the control bit set with a zero high version
// byte, then version 2 or 3. It returns that version.
func IsControlFrameStart(b []byte) (v Version, ok bool) {
	if len(b) < 2 || b[0] != 0x80 || (b[1] != 2 && b[1] != 3) {
		return 0, false
	}
	return Version(b[1]), true
}
