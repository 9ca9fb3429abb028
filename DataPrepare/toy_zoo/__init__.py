"""Toy GAN zoo: a small real benchmark for DNA-Det built on CPU from photos shipped in pip packages.

Four generator architectures (dcgan, progan, bilinear, subpixel; labels 1-4, real = 0) are
trained adversarially on random crops of three disjoint photo domains, with the variations
DNA-Det tests: another seed, another loss, fine-tuning on new data, another dataset.
Entry point: ``build_zoo``; the CLI is ``DataPrepare/make_toy_zoo.py``.
"""
from .build import build_zoo, format_summary
from .generators import ARCH_LABELS, GENERATORS, Discriminator, build_generator
from .photos import DOMAIN_PHOTOS, DOMAINS
from .sources import SCALES, plan_sources

__all__ = ["build_zoo", "format_summary", "ARCH_LABELS", "GENERATORS", "Discriminator", "build_generator",
           "DOMAIN_PHOTOS", "DOMAINS", "SCALES", "plan_sources"]
