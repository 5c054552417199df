"""One recipe: ``build(cfg) -> (dls, model, learner)``, and the checks it runs first."""

from actscope.recipe.build import (
    build,
    locate_data,
    make_dataloaders,
    make_learner,
    make_model,
    make_optimizer,
    make_schedule,
    seed_everything,
)
from actscope.recipe.checks import (
    check_device,
    check_dry_forward,
    check_nproc,
    check_out_dir,
    check_schedule,
)
from actscope.recipe.memory import available_bytes, check_memory, estimate_fit_bytes

__all__ = ["available_bytes", "build", "check_device", "check_dry_forward", "check_memory",
           "check_nproc", "check_out_dir", "check_schedule", "estimate_fit_bytes", "locate_data",
           "make_dataloaders", "make_learner", "make_model", "make_optimizer", "make_schedule",
           "seed_everything"]
