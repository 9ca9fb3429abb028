"""Config modules load with the released values; overrides are strict."""
import pytest

from configs import load_config


def test_released_values():
    celeba, lsun, wild, pretrain = (load_config(n) for n in ("celeba", "lsun", "in_the_wild", "pretrain"))
    assert (celeba.learning_rate, celeba.lr_step_size, celeba.batch_size, celeba.class_num) == (1e-4, 500, 32, 5)
    assert (lsun.learning_rate, lsun.lr_step_size) == (1e-3, 2500)
    assert (wild.batch_size, wild.class_num, wild.resize_size, wild.second_resize_size, wild.metric) == \
        (16, 11, 128, 512, "f1")
    assert len(wild.class_names) == 11
    assert (pretrain.class_num, pretrain.batch_size, pretrain.max_epochs, pretrain.save_interval) == (170, 128, 50, 1)
    for config in (celeba, lsun, wild, pretrain):
        assert (config.seed, config.crop_size, config.multi_size, config.crop_num) == (0, 128, 64, 16)
        assert (config.temperature, config.lr_gamma, config.early_stop_bar) == (0.07, 0.9, 20)


def test_toy_configs_load():
    assert load_config("toy").class_names == ("real", "dcgan", "progan", "bilinear", "subpixel")


def test_pretrain_configs_count_every_transformation():
    from data.transforms import PRETRAIN_NUM_CLASSES, pretrain_transforms
    assert PRETRAIN_NUM_CLASSES == len(pretrain_transforms()) == 170
    for name in ("pretrain", "toy_pretrain"):
        assert load_config(name).class_num == PRETRAIN_NUM_CLASSES


def test_override_types_are_converted():
    config = load_config("toy", ["batch_size=3", "learning_rate=0.5", "train_aug=true",
                                 "metric=f1", "class_names=a,b,c,d,e"])
    assert (config.batch_size, config.learning_rate, config.train_aug, config.metric) == (3, 0.5, True, "f1")
    assert config.class_names == ("a", "b", "c", "d", "e")


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ValueError, match="unknown config key 'lr'.*learning_rate"):
        load_config("toy", ["lr=0.1"])


@pytest.mark.parametrize("item, message", [
    ("batch_size=two", "expected a value of type int"),
    ("train_aug=maybe", "expected a value of type bool"),
    ("metric=auc", "choose one of"),
    ("batch_size", "key=value"),
    ("batch_size=0", "must be >= 1"),
])
def test_bad_overrides(item, message):
    with pytest.raises(ValueError, match=message):
        load_config("toy", [item])


def test_unknown_config_module():
    with pytest.raises(ValueError, match="no config named 'nope'"):
        load_config("nope")


def test_class_names_follow_class_num_unless_given():
    assert load_config("toy", ["class_num=3"]).class_names == ("class_0", "class_1", "class_2")
    with pytest.raises(ValueError, match="class_names has 2 names"):
        load_config("toy", ["class_num=3", "class_names=a,b"])


def test_every_numeric_key_has_a_checked_range():
    """A new int or float setting must say which values can work (configs.RANGES), so that
    ``--set key=0`` or ``nan`` is refused by name instead of failing later."""
    import dataclasses
    from configs import RANGES
    from configs.base import Config
    numeric = {f.name for f in dataclasses.fields(Config) if f.type in (int, float, "int", "float")}
    assert numeric and numeric == set(RANGES), numeric ^ set(RANGES)


def test_whole_image_with_the_contrastive_loss_is_refused():
    """One view per image leaves SupCon nothing to contrast: the combination is an error, not a
    silent drop of the loss; the whole-image baselines set use_contrastive = False."""
    with pytest.raises(ValueError, match="whole_image = True trains on one view per image"):
        load_config("toy", ["whole_image=true"])
    for name in ("toy_ce_only", "toy_attnet", "toy_dct"):
        config = load_config(name)
        assert config.whole_image and not config.use_contrastive
