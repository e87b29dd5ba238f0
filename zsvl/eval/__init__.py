"""zsvl.eval"""
