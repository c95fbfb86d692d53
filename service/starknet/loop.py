"""The Starknet client's loop thread: the shared LoopThread (service/loop_thread.py), imported here by its old name."""

from service.loop_thread import LoopThread

__all__ = ["LoopThread"]
