"""Labelled corpus generator: synthetic and real content, injected defects, exact labels.

- content.py / audio.py / clips.py: programme sources, rendered frame by frame / block by block
- defects.py: scheduled defects as small transforms that also describe themselves as labels
- scenario.py: a programme plus its defects (`Scenario`), or an endless `Channel` for live demos
- encode.py: the encoder sink (PyAV), to a file or a live URL
- tspackets.py / damage.py: transport-level defects done on the encoded MPEG-TS bytes
- verify.py: measures on the written file where frames and samples landed
- recipes.py / corpus.py: which cases, and building them into a corpus (docs/corpus-format.md)
"""

from streamqc.synth.corpus import build_corpus, plan_corpus
from streamqc.synth.encode import AudioCodec, EncoderSink, VideoCodec, encode_scenario
from streamqc.synth.scenario import Channel, Scenario
from streamqc.synth.spec import AudioSpec, VideoSpec

__all__ = [
    "AudioCodec", "AudioSpec", "Channel", "EncoderSink", "Scenario", "VideoCodec", "VideoSpec",
    "build_corpus", "encode_scenario", "plan_corpus",
]
