"""ActscopeCallback in a real Hugging Face ``Trainer.train()``: tiny models built from a config
(random init, no download) on generated token data, on the CPU."""

from __future__ import annotations

import os

import pytest
import torch

transformers = pytest.importorskip("transformers", reason="make test installs "
                                   "actscope[transformers]")

from actscope.errors import UsageError  # noqa: E402
from actscope.integrations.transformers import STATE_FILE, ActscopeCallback  # noqa: E402
from tests.integrations.common import check_report, leftover_hooks  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach the hub
SEQ, VOCAB, LAYERS = 16, 64, 3


class Tokens(torch.utils.data.Dataset):
    """``n`` random token sequences; the labels are the inputs (causal LM) or a class."""

    def __init__(self, n: int, classify: bool = False, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, VOCAB, (n, SEQ), generator=g)
        self.classify = classify

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ids = self.ids[i]
        return {"input_ids": ids, "labels": ids[0] % 2 if self.classify else ids}


def gpt2() -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=VOCAB, n_positions=SEQ, n_embd=32, n_layer=LAYERS,
                                  n_head=2, bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(cfg)


def train_args(tmp_path, **kw) -> transformers.TrainingArguments:
    args = dict(output_dir=str(tmp_path), max_steps=6, per_device_train_batch_size=4,
                per_device_eval_batch_size=4, learning_rate=1e-3, report_to="none",
                use_cpu=True, save_strategy="no", logging_strategy="no", disable_tqdm=True,
                dataloader_num_workers=0, seed=0)
    args.update(kw)
    return transformers.TrainingArguments(**args)


def test_gpt2_records_each_optimizer_step_not_eval(tmp_path):
    model, cb = gpt2(), ActscopeCallback()
    assert leftover_hooks(model) == []
    args = train_args(tmp_path, eval_strategy="steps", eval_steps=2,
                      gradient_accumulation_steps=2, run_name="gpt2-tiny")
    trainer = transformers.Trainer(model=model, args=args, train_dataset=Tokens(64),
                                   eval_dataset=Tokens(8, seed=1), callbacks=[cb])
    trainer.train()
    tel = cb.result()
    # layers = the transformer blocks; records = optimizer steps (6, not 12 micro-batches,
    # and none of the three evaluations)
    assert [n.split()[0] for n in tel.names] == [f"transformer.h.{i}" for i in range(LAYERS)]
    assert all("GPT2Block" in n for n in tel.names)
    assert tel.mean.shape == (LAYERS, 6) and len(tel.iters) == 6
    assert cb.report_path == tmp_path / "actscope" / "report.html"
    saved = check_report(tmp_path / "actscope", tel.names)
    assert saved.mean.shape == (LAYERS, 6)
    assert "<title>actscope report: gpt2-tiny</title>" in cb.report_path.read_text()  # run_name
    assert leftover_hooks(model) == []


def test_bert_classifier_watches_the_encoder_layers(tmp_path):
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=64,
                                  max_position_embeddings=SEQ, num_labels=2,
                                  pad_token_id=0)
    model = transformers.BertForSequenceClassification(cfg)
    cb = ActscopeCallback(out_dir=tmp_path / "report")
    transformers.Trainer(model=model, args=train_args(tmp_path, max_steps=4),
                         train_dataset=Tokens(32, classify=True), callbacks=[cb]).train()
    tel = check_report(tmp_path / "report", cb.result().names)
    assert [n.split()[0] for n in tel.names] == ["bert.encoder.layer.0", "bert.encoder.layer.1"]
    assert len(tel.iters) == 4
    assert leftover_hooks(model) == []


def test_resume_from_checkpoint_continues_the_recording(tmp_path):
    cb = ActscopeCallback(report=False)
    args = train_args(tmp_path, save_strategy="steps", save_steps=3)
    transformers.Trainer(model=gpt2(), args=args, train_dataset=Tokens(64), callbacks=[cb]).train()
    full = cb.result()
    assert (tmp_path / "checkpoint-3" / STATE_FILE).is_file()

    cb2, model2 = ActscopeCallback(report=False), gpt2()
    transformers.Trainer(model=model2, args=args, train_dataset=Tokens(64),
                         callbacks=[cb2]).train(resume_from_checkpoint=str(tmp_path /
                                                                           "checkpoint-3"))
    resumed = cb2.result()
    assert list(resumed.iters) == list(full.iters)
    torch.testing.assert_close(resumed.mean[:, :3], full.mean[:, :3])
    assert leftover_hooks(model2) == []


def test_with_block_removes_the_hooks_when_train_raises(tmp_path):
    model = gpt2()

    class Boom(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"), ActscopeCallback() as cb:
        transformers.Trainer(model=model, args=train_args(tmp_path), train_dataset=Tokens(64),
                             callbacks=[cb, Boom()]).train()
    assert leftover_hooks(model) == []
    assert len(cb.result().iters) == 2


def test_resume_reads_the_recording_of_the_checkpoint_resumed_wherever_it_lies(tmp_path):
    """A checkpoint outside output_dir (or another run's folder as output_dir) is found by its
    own path; a recording that is not the checkpoint's is not spliced in."""
    runs = {}
    for name, lr in (("A", 1e-3), ("B", 5e-2)):
        cb = ActscopeCallback(report=False)
        args = train_args(tmp_path / name, save_strategy="steps", save_steps=3, learning_rate=lr,
                          logging_strategy="steps", logging_steps=1)
        transformers.Trainer(model=gpt2(), args=args, train_dataset=Tokens(64),
                             callbacks=[cb]).train()
        runs[name] = cb.result()
    ckpt_b = str(tmp_path / "B" / "checkpoint-3")
    for out in ("C", "A"):  # a fresh folder; run A's folder, which has its own checkpoint-3
        cb = ActscopeCallback(report=False)
        args = train_args(tmp_path / out, learning_rate=5e-2, logging_strategy="steps",
                          logging_steps=1)
        transformers.Trainer(model=gpt2(), args=args, train_dataset=Tokens(64),
                             callbacks=[cb]).train(resume_from_checkpoint=ckpt_b)
        t = cb.result()
        assert list(t.iters) == list(range(6)), out
        torch.testing.assert_close(t.mean[:, :3], runs["B"].mean[:, :3])

    # run A's recording put into B's checkpoint: its trainer state is not B's, so it is not used
    (tmp_path / "B" / "checkpoint-3" / STATE_FILE).write_bytes(
        (tmp_path / "A" / "checkpoint-3" / STATE_FILE).read_bytes())
    cb = ActscopeCallback(report=False)
    args = train_args(tmp_path / "D", learning_rate=5e-2, logging_strategy="steps",
                      logging_steps=1)
    with pytest.warns(UserWarning, match="another trainer state"):
        transformers.Trainer(model=gpt2(), args=args, train_dataset=Tokens(64),
                             callbacks=[cb]).train(resume_from_checkpoint=ckpt_b)
    assert list(cb.result().iters) == [3, 4, 5]


def test_a_users_file_in_the_report_folder_stops_train_before_training(tmp_path):
    folder = tmp_path / "actscope"
    folder.mkdir()
    (folder / "findings.json").write_text('["my notes"]')
    model, cb = gpt2(), ActscopeCallback()
    trainer = transformers.Trainer(model=model, args=train_args(tmp_path),
                                   train_dataset=Tokens(64), callbacks=[cb])
    with pytest.raises(UsageError, match="findings.json exists and was not written by actscope"):
        trainer.train()
    assert trainer.state.global_step == 0 and leftover_hooks(model) == []
    assert (folder / "findings.json").read_text() == '["my notes"]'


def test_report_without_run_name_is_titled_after_the_output_dir(tmp_path):
    # transformers 5 leaves run_name None: the title was our subfolder, "actscope"
    cb = ActscopeCallback()
    args = train_args(tmp_path / "my-gpt2", max_steps=2)
    args.run_name = None
    transformers.Trainer(model=gpt2(), args=args, train_dataset=Tokens(16),
                         callbacks=[cb]).train()
    assert "<h1>actscope run: my-gpt2</h1>" in cb.report_path.read_text()


@pytest.mark.parametrize("damage", ["garbage", "wrong_type", "truncated"])
def test_a_damaged_recording_in_the_checkpoint_is_one_line_naming_it(tmp_path, damage):
    from actscope.errors import ActscopeError
    from actscope.integrations.recording import STATE_VERSION

    args = train_args(tmp_path, save_strategy="steps", save_steps=3)
    transformers.Trainer(model=gpt2(), args=args, train_dataset=Tokens(64),
                         callbacks=[ActscopeCallback(report=False)]).train()
    saved = tmp_path / "checkpoint-3" / STATE_FILE
    if damage == "garbage":
        saved.write_bytes(b"garbage")
    elif damage == "wrong_type":
        torch.save({"version": STATE_VERSION, "telemetry": "x"}, saved)
    else:
        saved.write_bytes(saved.read_bytes()[:500])
    trainer = transformers.Trainer(model=gpt2(), args=args, train_dataset=Tokens(64),
                                   callbacks=[ActscopeCallback(report=False)])
    with pytest.raises(ActscopeError) as info:
        trainer.train(resume_from_checkpoint=str(tmp_path / "checkpoint-3"))
    assert str(saved) in str(info.value) and "\n" not in str(info.value)
