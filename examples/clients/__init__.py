"""Our own faithful copies of four client setups (issue 22), each a runnable script.

- ``mnist_watch.py``: pytorch/examples ``mnist/main.py`` with ``actscope.watch()``;
- ``nanogpt_model.py`` + ``nanogpt_train.py``: karpathy/nanoGPT's ``model.py`` trained by a
  short copy of its ``train.py`` loop, with ``actscope.watch()``;
- ``lightning_autoencoder.py``: the Lightning README's ``LitAutoEncoder`` with ``ActscopeCallback``;
- ``hf_gpt2.py``: a tiny GPT-2 (``GPT2Config``) in the Hugging Face ``Trainer`` with the callback.

Each has a ``run(...)`` function (the tests in tests/clients/ call it with tiny sizes) and a
command line (``python -m examples.clients.<name> --help`` from the repository root).
"""
