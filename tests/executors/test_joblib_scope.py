"""The joblib backend is active only inside JoblibPool / ScikitLearnPool."""

from __future__ import annotations

import os

import joblib
import pytest
from joblib import Parallel, delayed

import skyward as sky
from skyward.events import FunctionCall, SkywardEvent
from skyward.integrations.joblib import SkywardBackend


class Recorder:
    def __init__(self) -> None:
        self.calls: list[FunctionCall] = []

    def __call__(self, event: SkywardEvent) -> None:
        if isinstance(event, FunctionCall):
            self.calls.append(event)


def test_the_default_backend_is_back_after_the_block() -> None:
    backend, _ = joblib.parallel.get_active_backend()
    assert not isinstance(backend, SkywardBackend)
    with sky.integrations.JoblibPool(provider=sky.Local(), nodes=1) as pool:
        # One slot: joblib would run a single job here; the pool still gets it.
        pids = Parallel(n_jobs=-1)(delayed(os.getpid)() for _ in range(3))
        assert os.getpid() not in pids
        assert isinstance(joblib.parallel.get_active_backend()[0], SkywardBackend)
    assert not pool.is_open
    assert not isinstance(joblib.parallel.get_active_backend()[0], SkywardBackend)


def test_the_backend_outside_a_pool_says_where_to_use_it() -> None:
    with pytest.raises(sky.errors.NoActivePoolError, match="JoblibPool"):
        with joblib.parallel_config(backend="skyward"):
            Parallel(n_jobs=2)(delayed(abs)(i) for i in range(2))


@pytest.mark.slow
def test_grid_search_through_scikit_learn_pool_matches_a_local_search() -> None:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC

    X, y = load_digits(return_X_y=True)
    X, y = X[:600], y[:600]
    grid = {"C": [0.1, 1, 10], "kernel": ["rbf", "poly"]}
    local = GridSearchCV(SVC(), grid, cv=3, n_jobs=1).fit(X, y)

    recorder = Recorder()
    with sky.integrations.ScikitLearnPool(
        provider=sky.Local(), nodes=2, concurrency=2, on_event=recorder
    ):
        remote = GridSearchCV(SVC(), grid, cv=3, n_jobs=-1).fit(X, y)

    assert remote.best_params_ == local.best_params_
    assert remote.cv_results_["mean_test_score"].tolist() == pytest.approx(
        local.cv_results_["mean_test_score"].tolist()
    )
    assert {call.node for call in recorder.calls} == {0, 1}
