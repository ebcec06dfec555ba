"""Conversion: open an input, demux and decode it in-process into numpy buffers."""

from streamqc.sources.reader import MediaInfo, MediaReader, SourceOptions, open_media

__all__ = ["MediaInfo", "MediaReader", "SourceOptions", "open_media"]
