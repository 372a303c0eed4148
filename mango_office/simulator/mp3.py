"""Genuine MP3 files of silence, built frame by frame without an encoder.

Mango serves recordings as ``audio/mpeg``; the simulator must hand out bytes that
any MP3 decoder (and Odoo's mimetype sniffing) accepts, not a placeholder string.

Each frame is MPEG-1 Layer III, 48 kHz, 32 kbit/s, mono, no CRC: a 4-byte header,
17 bytes of side information and main data. With all side information zero,
``part2_3_length`` and ``big_values`` are 0 for both granules, so a decoder reads
no Huffman data and outputs 1152 samples of digital silence per frame. At this
bitrate and sample rate a frame is exactly 144 * 32000 / 48000 = 96 bytes, so no
padding bit is ever needed and every frame is identical.
"""

FRAME_HEADER = bytes(
    (
        0xFF,  # sync (8 of 11 bits)
        0xFB,  # sync, MPEG-1 (11), Layer III (01), no CRC (1)
        0x14,  # bitrate index 1 = 32 kbit/s, sample rate index 1 = 48 kHz, no padding
        0xC4,  # mono (11), no mode extension, not copyrighted, original, no emphasis
    )
)
SAMPLE_RATE = 48000
BITRATE = 32000
SAMPLES_PER_FRAME = 1152
FRAME_SIZE = 144 * BITRATE // SAMPLE_RATE
SIDE_INFO_SIZE = 17  # mono MPEG-1

_FRAME = FRAME_HEADER + bytes(FRAME_SIZE - len(FRAME_HEADER))


def frame_count(seconds):
    return max(1, round(seconds * SAMPLE_RATE / SAMPLES_PER_FRAME))


def silence(seconds=1.0, title=None):
    """MP3 bytes holding ``seconds`` of silence, optionally with an ID3v2.3 title."""
    body = _FRAME * frame_count(seconds)
    if not title:
        return body
    return _id3v2_title(title) + body


def duration_of(data):
    """Seconds of audio in an MP3 produced by :func:`silence` (header-driven)."""
    offset = 0
    if data[:3] == b"ID3":
        size = 0
        for byte in data[6:10]:
            size = (size << 7) | (byte & 0x7F)
        offset = 10 + size
    frames = 0
    while (
        offset + 4 <= len(data)
        and data[offset] == 0xFF
        and data[offset + 1] & 0xE0 == 0xE0
    ):
        frames += 1
        offset += FRAME_SIZE
    return frames * SAMPLES_PER_FRAME / SAMPLE_RATE


def _id3v2_title(title):
    text = b"\x01" + "\ufeff".encode("utf-16-le") + title.encode("utf-16-le")
    frame = b"TIT2" + len(text).to_bytes(4, "big") + b"\x00\x00" + text
    size = len(frame)
    syncsafe = bytes(
        ((size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F)
    )
    return b"ID3\x03\x00\x00" + syncsafe + frame
