"""One recipe: ``build(cfg) -> (dls, model, learner)``, and the checks it runs first."""

from actscope.recipe.build import (
    build,
    locate_data,
    make_dataloaders,
    make_learner,
    make_optimizer,
    make_schedule,
    seed_everything,
)
from actscope.recipe.checks import (
    check_batch_norm,
    check_device,
    check_dry_forward,
    check_nproc,
    check_out_dir,
    check_schedule,
    check_seed,
    check_settings,
)
from actscope.recipe.memory import available_bytes, check_memory, estimate_fit_bytes
from actscope.recipe.model import make_model
from actscope.recipe.paths import check_data_path, check_path

__all__ = ["available_bytes", "build", "check_batch_norm", "check_data_path", "check_device",
           "check_dry_forward", "check_memory", "check_nproc", "check_out_dir", "check_path",
           "check_schedule", "check_seed", "check_settings", "estimate_fit_bytes", "locate_data",
           "make_dataloaders", "make_learner", "make_model", "make_optimizer", "make_schedule",
           "seed_everything"]
