"""Data preparation: annotation lists (``splits``, behind ``generate_.py``) and the toy GAN zoo
(``toy_zoo``, behind ``make_toy_zoo.py``)."""
