"""The engine: a process of its own that runs everything needing Keras for the window.

The window (``tlgui.gui``) never imports Keras, TensorFlow, JAX or torch. It starts one
engine process (``client.EngineClient``), sends it calls as typed JSON messages over a
pipe (``protocol``), and gets back the same core events the CLI sees, then a result, an
error or a cancellation (``codec`` turns core objects into plain data and back). The
engine (``server``) holds the scanned datasets and the model the window is working on,
runs each call in a thread of its own, and stops a call within one batch when asked.
See docs/adr/006-engine-process.md.
"""
