"""The same generations re-read at another layer by teacher forcing (mipeaks.layers, chapter 3)."""

from __future__ import annotations

import torch

from mipeaks.layers import layer_traces, teacher_forced_states
from mipeaks.pipeline import traces_trajectories


def test_teacher_forced_states_match_the_capture(tiny_llama, tiny_run):
    _, run, trajs = tiny_run
    trace = next(run.traces())
    torch.testing.assert_close(teacher_forced_states(tiny_llama, trace, trace.layer), trace.states, rtol=1e-4,
                               atol=1e-4)
    same = layer_traces(tiny_llama, run, "last")
    for a, b in zip(same, run.traces()):
        torch.testing.assert_close(a.gold, b.gold)
        torch.testing.assert_close(a.states, b.states, rtol=1e-4, atol=1e-4)
    middle = layer_traces(tiny_llama, run, "middle")
    assert {t.layer for t in middle} == {tiny_llama.n_layers // 2}
    assert set(traces_trajectories(middle)) == set(trajs)
