"""The dock's shared state (Qt-free): its events fire on changes, once each."""

from types import SimpleNamespace

from paintseg.session.dock import DockState


def test_the_dock_state_tells_of_each_change_once():
    state, heard = DockState(), []
    state.busy_changed.connect(heard.append)
    state.model_changed.connect(lambda model: heard.append(("model", model)))
    state.project_changed.connect(lambda project: heard.append(("set", project)))
    state.busy = "train"
    state.busy = "train"  # no change: no event
    state.busy = ""
    state.model = "a model"
    assert heard == ["train", "", ("model", "a model")]
    state.project_index = 3
    project = SimpleNamespace(images=[SimpleNamespace(name="first")])
    state.project = project
    assert heard[-1] == ("set", project) and state.project_index is None  # nothing shown yet
    assert state.current_image_name() is None
    state.project_index = 0
    assert state.current_image_name() == "first" and state.current_image() is project.images[0]
