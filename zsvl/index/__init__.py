"""zsvl.index"""
