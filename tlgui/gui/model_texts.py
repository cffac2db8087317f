"""What the Model tab says: tooltips of its settings and the names of their choices."""

from __future__ import annotations

TIPS = {
    "backbone": "The pre-trained network that turns a photo into features. It learned from "
                "1.4 million ImageNet photos; bigger ones are more accurate but slower.",
    "image_size": "Photos are resized to this many pixels square before the network sees "
                  "them. Larger keeps more detail but trains more slowly.",
    "weights": "Where the network's starting knowledge comes from: the ImageNet weights "
               "stored on this computer, or a weights file you pick.",
    "epochs1": "How many times the model sees every training photo while only the new last "
               "layer learns (the backbone stays as it is).",
    "epochs2": "How many times the model sees every training photo while the ticked top "
               "layers of the backbone are adjusted to your images. 0 skips this phase.",
    "lr1": "How big a step the model takes when it learns from a mistake: too large and it "
           "jumps around, too small and it learns slowly.",
    "lr2": "Keep this small (about 100 times smaller than phase 1) so the pre-trained "
           "knowledge is adjusted, not wiped out.",
    "optimizer": "The learning rule. Adam works well almost always.",
    "schedule": "Steady: the same rate every epoch. Falling: the rate falls along half a "
                "cosine from the rate set here towards zero at the last epoch, which lets "
                "fine-tuning settle (measured in docs/benchmarks.md).",
    "patience": "Stop the phase when validation accuracy has not improved for this many "
                "epochs, and keep the best epoch's model.",
    "batch": "How many photos the model looks at before each learning step. Smaller uses "
             "less memory; 32 suits most computers.",
    "augment": "Show the model altered copies of your photos so it learns what matters, not "
               "how a photo happened to be taken. 'Fast' prepares a few fixed copies once.",
    "flip": "Also learn from mirror images (left-right). Turn off when left and right "
            "matter for your classes.",
    "rotation": "Tilt photos at random by up to this many degrees.",
    "zoom": "Zoom in or out at random by up to this share of the photo.",
    "contrast": "Change contrast at random by up to this share.",
}
AUGMENT_MODES = (("cached_views", "Fast: a few fixed altered copies"),
                 ("per_epoch", "Thorough: new copies every epoch (slow)"),
                 ("off", "Off: the photos as they are"))
OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
SCHEDULES = (("constant", "steady"), ("cosine", "falling"))
