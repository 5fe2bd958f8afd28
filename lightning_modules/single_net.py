"""Single-net COVID-Net (siamese paper, section 3.2): the COVID-Net encoder, a softmax over the classes,
cross-entropy, Adam. The paper's epochs are class-balanced (all COVID-19 images plus as many of each other
class, section 3.1): the method config turns on ``balanced_sampling: undersample`` for that.
"""

from __future__ import annotations

from lightning_modules.backbones.covidnet import COVIDNetClassifier
from lightning_modules.base import ClassificationTask
from lightning_modules.registries import METHODS


@METHODS.register()
class SingleNetCOVIDNet(ClassificationTask):
    name = "single_net"

    def configure_models(self) -> None:
        options = dict(self.hparams.model or {})
        self.model = COVIDNetClassifier(
            num_classes=self.num_classes,
            in_chans=self.hparams.in_chans,
            image_size=self.hparams.image_size,
            nf=options.get("nf", 128),
            fc_units=options.get("fc_units", 1024),
            dropout=tuple(options.get("dropout", (0.5, 0.2, 0.2))),
        )

    def gradcam_target_layer(self):
        """Last convolutional stage, the layer the paper's Grad-CAM maps come from (section 3.3.1)."""
        return self.model.encoder.stages[-1]
