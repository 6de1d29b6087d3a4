import threading

import pytest

from engine.progress import Cancelled, CancelToken


def test_cancel_token_crosses_threads():
    token = CancelToken()
    token.raise_if_cancelled()
    worker = threading.Thread(target=token.cancel)
    worker.start()
    worker.join()
    assert token.cancelled
    with pytest.raises(Cancelled):
        token.raise_if_cancelled()
