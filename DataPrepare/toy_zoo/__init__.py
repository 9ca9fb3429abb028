"""Toy GAN zoo: a small real benchmark for DNA-Det built on CPU from photos shipped in pip packages.

Image-conditioned generators (AutoGAN-style encoder -> 8x8 bottleneck -> family decoder, no
skip connections) of four closed-set families (dcgan, progan, bilinear, subpixel; labels 1-4,
real = 0) and two unseen families (stylegan2, resizeblur; label -1) are trained adversarially
plus a reconstruction loss on random crops of three disjoint photo domains, with the
variations DNA-Det tests: another seed, another loss, fine-tuning on new data, another
dataset. They generate by reconstructing held-out crops, so every class shows real content.
Entry points: ``build_zoo`` and ``audit_zoo``; the CLI is ``DataPrepare/make_toy_zoo.py``.
"""
from .audit import audit_lists, audit_zoo, format_audit, shortcut_features
from .build import build_zoo
from .generators import ARCH_LABELS, DECODERS, FAMILY_LABELS, UNSEEN_ARCHS, Discriminator, build_generator
from .photos import DOMAIN_PHOTOS, DOMAINS
from .sources import SCALES, plan_sources
from .summary import format_summary

__all__ = ["build_zoo", "format_summary", "audit_zoo", "audit_lists", "format_audit", "shortcut_features",
           "ARCH_LABELS", "DECODERS", "FAMILY_LABELS", "UNSEEN_ARCHS", "Discriminator", "build_generator",
           "DOMAIN_PHOTOS", "DOMAINS", "SCALES", "plan_sources"]
