"""Entry point of the bundled app: the window without arguments, the command line with them."""

import multiprocessing
import os
import sys

if __name__ == "__main__":
    # Only the TensorFlow backend is bundled; a user's ~/.keras/keras.json naming another
    # backend must not break the app.
    os.environ["KERAS_BACKEND"] = "tensorflow"
    multiprocessing.freeze_support()
    from tlgui.__main__ import main

    sys.exit(main())
