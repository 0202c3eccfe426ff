"""Read-along EPUB 3 with media overlays, built from a rendered job's word track (pure).

Everything here is text and XML in, bytes (or an lxml tree) out; :mod:`jobs.readalong`
reads the job from the database and storage and writes the EPUB.

* :mod:`ssml.readalong.words` - a chapter's text cut into blocks and sentences, words
  grouped by sentence, what makes a word worth a ``<par>`` of its own, SMIL clock values.
* :mod:`ssml.readalong.overlay` - one SMIL document per chapter, streamed (word or
  sentence level), with the clip times of the word track.
* :mod:`ssml.readalong.generated` - XHTML chapters written from the chapter text (for
  Markdown, text, HTML and SSML input, and for credits), the nav document, the CSS.
* :mod:`ssml.readalong.source` - an EPUB's own content documents: the text ingest read,
  re-walked with where each character sits, the word track aligned to it, and ids added
  to each sentence and word without changing anything else.
* :mod:`ssml.readalong.package` - the package document: a new one, or the book's own with
  the overlays, their ``media:duration`` and the active class added.
"""
